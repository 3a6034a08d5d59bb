package app

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/mqtt-rules/mqtt-rules/internal/control"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttc"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Control at run time and availability (docs/homeassistant.md): the
// status topic (online, and offline as the MQTT will), the control
// topics and state topics of --control, Home Assistant discovery, and the
// controller behind the HTTP control endpoints.

// The status topic's payloads.
const (
	statusOnline  = "online"
	statusOffline = "offline"
)

// StatusTopicOff as Config.StatusTopic publishes no status topic (and
// allows no control topics, which live under it).
const StatusTopicOff = "off"

// DefaultStatusTopic returns the status topic of a client id when
// Config.StatusTopic is "": mqtt-rules/<client-id>/status.
func DefaultStatusTopic(clientID string) string {
	return "mqtt-rules/" + clientID + "/status"
}

// DefaultClientID is the client id when Config.ClientID is "":
// "mqtt-rules-" and the host name, with characters other than letters,
// digits, '-', '_' and '.' as '-'.
func DefaultClientID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "mqtt-rules"
	}
	return "mqtt-rules-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, h)
}

// prepareControl settles the client id and the status topic, before the
// MQTT client is made: they go into its will and online message.
func (a *App) prepareControl() error {
	a.clientID = a.cfg.ClientID
	if a.clientID == "" {
		a.clientID = DefaultClientID()
	}
	switch a.cfg.StatusTopic {
	case StatusTopicOff:
	case "":
		a.statusTopic = DefaultStatusTopic(a.clientID)
	default:
		a.statusTopic = a.cfg.StatusTopic
	}
	if strings.ContainsAny(a.statusTopic, "+#\x00") {
		return fmt.Errorf("status topic %q: must not hold '+', '#' or NUL (the default holds the client id; pass --status-topic)", a.statusTopic)
	}
	if (a.cfg.Control || a.cfg.HomeAssistant != "") && a.statusTopic == "" {
		return fmt.Errorf("--control and --homeassistant need the status topic: their topics live under it (--status-topic is %s)", StatusTopicOff)
	}
	return nil
}

// statusMessages returns the MQTT will (retained offline) and the online
// message of the status topic, or nils without one.
func (a *App) statusMessages() (will, online *mqttc.Will) {
	if a.statusTopic == "" {
		return nil, nil
	}
	return &mqttc.Will{Topic: a.statusTopic, Payload: []byte(statusOffline), QoS: 1, Retain: true},
		&mqttc.Will{Topic: a.statusTopic, Payload: []byte(statusOnline), QoS: 1, Retain: true}
}

// newController makes the controller: always (the HTTP endpoints use it
// with --http-token), with the control topics when asked.
func (a *App) newController() (err error) {
	a.control, err = control.New(control.Config{
		Engine:        a.engine,
		Publisher:     a.client,
		Logger:        a.log,
		StatusTopic:   a.statusTopic,
		Topics:        a.cfg.Control,
		HomeAssistant: a.cfg.HomeAssistant,
		ClientID:      a.clientID,
		Version:       a.cfg.Version,
	})
	return err
}

// filters returns what the engine subscribes: the rule set's filters and
// the control topics, reduced.
func (a *App) filters(rs *rules.RuleSet) []string {
	return topic.Reduce(slices.Concat(rs.Filters(), a.control.Filters()))
}

// onConnection tells the controller about the subscriber connection.
func (a *App) onConnection(up bool) { a.control.Connected(up) }

// Enabled reports whether a rule of the active set runs, and whether its
// file (engine.ByFile) or a control (engine.ByControl) decided.
func (a *App) Enabled(rule string) (enabled bool, by string, ok bool) {
	return a.engine.Enabled(rule)
}

var _ httpapi.Enabler = (*App)(nil)

// Control returns the controller of run-time control.
func (a *App) Control() *control.Controller { return a.control }

// StatusTopic returns the status topic, or "" without one.
func (a *App) StatusTopic() string { return a.statusTopic }

// ClientID returns the MQTT client id in use.
func (a *App) ClientID() string { return a.clientID }
