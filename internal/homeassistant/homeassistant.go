// Package homeassistant builds the Home Assistant MQTT discovery configs
// of a rule set (docs/homeassistant.md): per rule a switch (enabled), a
// sensor of its fires, a sensor of when it last fired and, for a rule with
// repeat, a button that acknowledges; all on one device, the engine
// instance. It only builds topics and payloads: internal/control
// publishes them.
package homeassistant

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// DefaultPrefix is Home Assistant's default discovery prefix.
const DefaultPrefix = "homeassistant"

// EntityPrefix starts every entity's object id, so the entity ids read
// switch.mqtt_rules_kitchen_too_hot.
const EntityPrefix = "mqtt_rules_"

// AckAll is what the acknowledge button sends to BASE/rule/<name>/ack:
// acknowledge every firing key (docs/homeassistant.md, "Control topics").
const AckAll = "*"

// Options describe the engine instance the configs are of.
type Options struct {
	// Prefix is the discovery prefix (DefaultPrefix when "").
	Prefix string
	// ClientID is the engine's MQTT client id: it names the device and,
	// as NodeID, the discovery topics.
	ClientID string
	// Version is the build's version (the device's sw_version).
	Version string
	// StatusTopic is the engine's status topic: every entity's
	// availability (online/offline).
	StatusTopic string
	// RuleTopics starts the rules' control and state topics: "BASE/rule/",
	// BASE being the status topic without its last level (a rule's
	// switch commands RuleTopics+name+"/set", its state is
	// RuleTopics+name+"/state").
	RuleTopics string
}

// Config is one entity's discovery message: its topic and its JSON.
type Config struct {
	Topic   string
	Payload []byte
}

// Device is the device every entity belongs to: the engine instance.
type Device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	SWVersion    string   `json:"sw_version,omitempty"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
}

// Origin says which software published a discovery message.
type Origin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw_version,omitempty"`
}

// Entity is a discovery payload. Its field names are Home Assistant's
// (MQTT discovery, unabbreviated); fields a component does not use are
// left out.
//
// DefaultEntityID ("switch.mqtt_rules_kitchen_too_hot") is the entity id
// Home Assistant gives the entity when it first sees it; ObjectID
// ("mqtt_rules_kitchen_too_hot") says the same to Home Assistant versions
// before default_entity_id (docs/homeassistant.md, "What appears in Home
// Assistant").
type Entity struct {
	Name                string  `json:"name"`
	UniqueID            string  `json:"unique_id"`
	DefaultEntityID     string  `json:"default_entity_id"`
	ObjectID            string  `json:"object_id"`
	Icon                string  `json:"icon,omitempty"`
	CommandTopic        string  `json:"command_topic,omitempty"`
	StateTopic          string  `json:"state_topic,omitempty"`
	ValueTemplate       string  `json:"value_template,omitempty"`
	PayloadOn           string  `json:"payload_on,omitempty"`
	PayloadOff          string  `json:"payload_off,omitempty"`
	StateOn             string  `json:"state_on,omitempty"`
	StateOff            string  `json:"state_off,omitempty"`
	PayloadPress        *string `json:"payload_press,omitempty"`
	StateClass          string  `json:"state_class,omitempty"`
	DeviceClass         string  `json:"device_class,omitempty"`
	AvailabilityTopic   string  `json:"availability_topic"`
	PayloadAvailable    string  `json:"payload_available"`
	PayloadNotAvailable string  `json:"payload_not_available"`
	QoS                 int     `json:"qos"`
	Device              Device  `json:"device"`
	Origin              Origin  `json:"origin"`
}

// The payloads of the status topic and of the switch's commands.
const (
	Online  = "online"
	Offline = "offline"
	On      = "ON"
	Off     = "OFF"
)

// Value templates reading the rule's state topic,
// {"enabled":true,"fires":12,"last_fired":"…" or null,"firing_keys":1}.
// A last_fired of null reads as None, which Home Assistant shows as
// unknown.
const (
	templateEnabled   = "{{ 'ON' if value_json.enabled else 'OFF' }}"
	templateFires     = "{{ value_json.fires }}"
	templateLastFired = "{{ value_json.last_fired if value_json.last_fired else 'None' }}"
)

// Configs returns the discovery configs of every rule of rs, in rule
// order: switch, fires sensor, last fired sensor and, with repeat, the
// acknowledge button.
func Configs(o Options, rs []*rules.Rule) []Config {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	ids := ObjectIDs(names)
	node := NodeID(o.ClientID)
	dev := Device{
		Identifiers:  []string{"mqtt-rules_" + node},
		Name:         deviceName(o.ClientID),
		SWVersion:    o.Version,
		Manufacturer: "mqtt-rules",
		Model:        "rules engine",
	}
	origin := Origin{Name: "mqtt-rules", SWVersion: o.Version}
	out := make([]Config, 0, 4*len(rs))
	for _, r := range rs {
		id := ids[r.Name]
		rule := o.RuleTopics + r.Name
		entity := func(component, suffix, name string) (Entity, string) {
			obj := id + suffix
			e := Entity{
				Name:                name,
				UniqueID:            node + "_" + obj,
				DefaultEntityID:     component + "." + EntityPrefix + obj,
				ObjectID:            EntityPrefix + obj,
				AvailabilityTopic:   o.StatusTopic,
				PayloadAvailable:    Online,
				PayloadNotAvailable: Offline,
				QoS:                 1,
				Device:              dev,
				Origin:              origin,
			}
			return e, o.Prefix + "/" + component + "/" + node + "/" + obj + "/config"
		}
		sw, topic := entity("switch", "", r.Name)
		sw.Icon = "mdi:robot"
		sw.CommandTopic = rule + "/set"
		sw.StateTopic = rule + "/state"
		sw.ValueTemplate = templateEnabled
		sw.PayloadOn, sw.PayloadOff = On, Off
		sw.StateOn, sw.StateOff = On, Off
		out = append(out, Config{Topic: topic, Payload: mustJSON(sw)})

		fires, topic := entity("sensor", "_fires", r.Name+" fires")
		fires.Icon = "mdi:counter"
		fires.StateTopic = rule + "/state"
		fires.ValueTemplate = templateFires
		fires.StateClass = "total_increasing"
		out = append(out, Config{Topic: topic, Payload: mustJSON(fires)})

		last, topic := entity("sensor", "_last_fired", r.Name+" last fired")
		last.StateTopic = rule + "/state"
		last.ValueTemplate = templateLastFired
		last.DeviceClass = "timestamp"
		out = append(out, Config{Topic: topic, Payload: mustJSON(last)})

		if r.Repeat > 0 {
			ack, topic := entity("button", "_ack", r.Name+" acknowledge")
			ack.Icon = "mdi:bell-check"
			ack.CommandTopic = rule + "/ack"
			all := AckAll // acknowledges every firing key
			ack.PayloadPress = &all
			out = append(out, Config{Topic: topic, Payload: mustJSON(ack)})
		}
	}
	return out
}

// deviceName names the device after the client id.
func deviceName(clientID string) string {
	if strings.HasPrefix(clientID, "mqtt-rules") {
		return clientID
	}
	return "mqtt-rules " + clientID
}

// NodeID turns a client id into a discovery topic's node id: the
// characters Home Assistant allows there ([a-zA-Z0-9_-]) are kept, any
// other becomes '_'.
func NodeID(clientID string) string {
	b := []byte(clientID)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "mqtt-rules"
	}
	return string(b)
}

// ObjectIDs maps rule names to ids Home Assistant accepts in object ids
// ([a-z0-9_]), deterministically (docs/homeassistant.md, "Entity ids"):
// the name lowercased, every other character '_'. A name that is already
// such an id keeps it. When names map to the same id, those that were
// changed get '_' and the first hex digits of their name's SHA-256
// appended (more digits in the unlikely case that still collides), so no
// two rules share an id and adding a rule never renames a rule whose name
// is already an id.
func ObjectIDs(names []string) map[string]string {
	plain := make(map[string]string, len(names))
	count := make(map[string]int, len(names))
	for _, n := range names {
		id := sanitize(n)
		plain[n] = id
		count[id]++
	}
	var out map[string]string
	for _, digits := range []int{6, 12, 64} {
		out = make(map[string]string, len(names))
		used := make(map[string]int, len(names))
		for _, n := range names {
			id := plain[n]
			if count[id] > 1 && id != n {
				sum := sha256.Sum256([]byte(n))
				id += "_" + hex.EncodeToString(sum[:])[:digits]
			}
			out[n] = id
			used[id]++
		}
		unique := true
		for _, k := range used {
			if k > 1 {
				unique = false
				break
			}
		}
		if unique {
			break
		}
	}
	return out
}

// sanitize lowercases a name and replaces every character outside
// [a-z0-9_] with '_'.
func sanitize(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// mustJSON encodes an Entity: strings and numbers, which cannot fail.
func mustJSON(v Entity) []byte {
	b, _ := json.Marshal(v)
	return b
}
