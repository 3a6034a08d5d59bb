package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttc"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// BrokerConfig is one broker of the config file's brokers: beside the
// default one (docs/brokers.md). Its keys are the connection flags of
// `mqtt-rules run`.
type BrokerConfig struct {
	Name       string // as rules name it in broker:
	URL        string
	ClientID   string // "": the default broker's client id, "-" and the name
	Username   string
	Password   string
	CAFile     string
	CertFile   string
	KeyFile    string
	Protocol   string // "5", "3.1.1" or "auto" ("": auto)
	ShareGroup string
	// SessionExpiry is how long an MQTT 5 broker keeps the session while
	// the engine is away; 0: never expires.
	SessionExpiry time.Duration
}

// checkBrokers checks the brokers' names and URLs (the config file's
// reader reports the same with file:line; this guards other callers).
func checkBrokers(bs []BrokerConfig) error {
	seen := map[string]bool{}
	for _, b := range bs {
		if err := CheckBrokerName(b.Name); err != nil {
			return err
		}
		if seen[b.Name] {
			return fmt.Errorf("broker %q is given twice", b.Name)
		}
		seen[b.Name] = true
		if b.URL == "" {
			return fmt.Errorf("broker %s: no URL (its broker: key)", b.Name)
		}
	}
	return nil
}

// CheckBrokerName checks a name of the config's brokers: letters,
// digits, '-', '_' and '.', and not "default", the name of --broker.
func CheckBrokerName(name string) error {
	if name == DefaultBrokerName {
		return errors.New(`broker name "default" is the broker of --broker (the top-level broker: key); name the others differently`)
	}
	if name == "" {
		return errors.New("a broker needs a name")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("broker name %q: use letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// DefaultBrokerName is how metrics, logs and the status page name the
// broker of --broker (or the embedded one).
const DefaultBrokerName = "default"

// conn is the engine's connection to one broker.
type conn struct {
	name   string // "" for the default broker
	url    string
	client *mqttc.Client
	subs   []string // what it subscribes for the active set, reduced
}

// label is the broker's name as users read it.
func (c *conn) label() string {
	if c.name == "" {
		return DefaultBrokerName
	}
	return c.name
}

// router is the executor's Publisher: each publish goes out on its
// broker's connection (a rule's broker, or its publish action's).
type router map[string]*mqttc.Client

func (r router) Publish(p *actions.Publish, done func(error)) {
	c := r[p.Broker]
	if c == nil {
		// The loader refuses names the config lacks: this is a bug.
		done(fmt.Errorf("publish %s: no connection to broker %q", p.Topic, p.Broker))
		return
	}
	c.Publish(p, done)
}

// DropsProperties implements actions.PropertyDropper.
func (r router) DropsProperties(broker string) bool {
	c := r[broker]
	return c != nil && c.DropsProperties(broker)
}

var (
	_ actions.Publisher       = router(nil)
	_ actions.PropertyDropper = router(nil)
)

// connect creates the client of every broker of the config beside the
// default one (a.conns[0]); none connects before Start's end.
func (a *App) connectOthers() error {
	for _, bc := range a.cfg.Brokers {
		id := bc.ClientID
		if id == "" {
			id = a.clientID + "-" + bc.Name
		}
		c := &conn{name: bc.Name, url: bc.URL}
		var err error
		c.client, err = mqttc.New(mqttc.Options{
			Broker:        bc.URL,
			ClientID:      id,
			Username:      bc.Username,
			Password:      bc.Password,
			CAFile:        bc.CAFile,
			CertFile:      bc.CertFile,
			KeyFile:       bc.KeyFile,
			ShareGroup:    bc.ShareGroup,
			Protocol:      bc.Protocol,
			SessionExpiry: bc.SessionExpiry,
			Logger:        a.log.With("broker", bc.Name),
			OnMessage:     a.onMessageFrom(bc.Name),
		})
		if err != nil {
			return fmt.Errorf("broker %s: %w", bc.Name, err)
		}
		a.conns = append(a.conns, c)
	}
	return nil
}

// onMessageFrom returns the message handler of a broker other than the
// default one: its messages reach the rules on that broker only, and
// control commands are taken from the default broker alone.
func (a *App) onMessageFrom(broker string) func(mqttc.Message) {
	return func(m mqttc.Message) {
		a.engine.Handle(engine.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retained: m.Retained, Broker: broker, Properties: m.Properties})
	}
}

// brokerNames are the names rules may give in broker: beside "default".
func brokerNames(cfg []BrokerConfig) []string {
	out := make([]string, len(cfg))
	for i, b := range cfg {
		out[i] = b.Name
	}
	return out
}

// filtersOf returns what a connection subscribes for a rule set: on the
// default broker the control topics too.
func (a *App) filtersOf(c *conn, rs *rules.RuleSet) []string {
	if c.name == "" {
		return a.filters(rs)
	}
	return topic.Reduce(rs.FiltersOn(c.name))
}

// resubscribe makes every connection subscribe what rs needs: the filters
// it adds first, then it drops those it no longer needs. When a broker
// refuses a filter, what was added anywhere is taken back and the error
// returned; the caller swaps the old set back in.
func (a *App) resubscribe(ctx context.Context, rs *rules.RuleSet) (added, removed map[string][]string, err error) {
	next := make([][]string, len(a.conns))
	added, removed = map[string][]string{}, map[string][]string{}
	for i, c := range a.conns {
		next[i] = a.filtersOf(c, rs)
		add, rm := diff(c.subs, next[i])
		if len(add) > 0 {
			added[c.label()] = add
		}
		if len(rm) > 0 {
			removed[c.label()] = rm
		}
	}
	for i, c := range a.conns {
		add := added[c.label()]
		if len(add) == 0 {
			continue
		}
		if err = c.client.Subscribe(ctx, add...); err != nil {
			// Take back what this and the earlier connections were asked
			// for, granted or not, so each wants exactly the running
			// set's filters again (and /readyz waits for no refused one).
			for _, back := range a.conns[:i+1] {
				if b := added[back.label()]; len(b) > 0 {
					if uerr := back.client.Unsubscribe(ctx, b...); uerr != nil {
						a.log.Warn("reload: unsubscribe of the rejected set's filters failed", "broker", back.label(), "filters", b, "err", uerr)
					}
				}
			}
			if len(a.conns) > 1 {
				err = fmt.Errorf("broker %s: %w", c.label(), err)
			}
			return nil, nil, err
		}
	}
	for i, c := range a.conns {
		c.subs = next[i]
		if rm := removed[c.label()]; len(rm) > 0 {
			if err := c.client.Unsubscribe(ctx, rm...); err != nil {
				a.log.Warn("reload: unsubscribe failed", "broker", c.label(), "filters", rm, "err", err)
			}
		}
	}
	return added, removed, nil
}

// Connected reports whether every broker connection is up.
func (a *App) Connected() bool {
	for _, c := range a.conns {
		if !c.client.Connected() {
			return false
		}
	}
	return true
}

// Brokers returns every broker connection, the default one first.
func (a *App) Brokers() []httpapi.BrokerState {
	out := make([]httpapi.BrokerState, len(a.conns))
	for i, c := range a.conns {
		out[i] = httpapi.BrokerState{
			Name:      c.label(),
			URL:       actions.RedactURL(c.url),
			Connected: c.client.Connected(),
			Ready:     c.client.Ready(),
			Protocol:  c.client.Protocol(),
		}
	}
	return out
}

// closeConns stops every connection: first all stop receiving, then each
// disconnects (after the executor finished, by the caller).
func closeConns(ctx context.Context, conns []*conn) error {
	var errs []error
	for _, c := range slices.Backward(conns) {
		if err := c.client.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("broker %s: %w", c.label(), err))
		}
	}
	return errors.Join(errs...)
}
