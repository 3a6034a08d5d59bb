package homeassistant

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

var validObjectID = regexp.MustCompile(`^[a-z0-9_]+$`)

func TestObjectIDs(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  map[string]string // with "#" standing for the name's hash suffix
	}{
		{"valid names are kept", []string{"kitchen_too_hot", "door2"},
			map[string]string{"kitchen_too_hot": "kitchen_too_hot", "door2": "door2"}},
		{"lowercased, other characters to _", []string{"Kitchen-Too.Hot"},
			map[string]string{"Kitchen-Too.Hot": "kitchen_too_hot"}},
		{"a valid name keeps its id, the mapped one gets a suffix", []string{"kitchen-too-hot", "kitchen_too_hot"},
			map[string]string{"kitchen-too-hot": "kitchen_too_hot_#", "kitchen_too_hot": "kitchen_too_hot"}},
		{"two mapped names both get a suffix", []string{"a-b", "a.b", "c"},
			map[string]string{"a-b": "a_b_#", "a.b": "a_b_#", "c": "c"}},
		{"case collisions", []string{"Garage", "garage"},
			map[string]string{"Garage": "garage_#", "garage": "garage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ObjectIDs(tt.names)
			for n, w := range tt.want {
				g := got[n]
				if base, ok := strings.CutSuffix(w, "#"); ok {
					if !strings.HasPrefix(g, base) || len(g) != len(base)+6 {
						t.Errorf("%q → %q, want %s and 6 hex digits", n, g, base)
					}
				} else if g != w {
					t.Errorf("%q → %q, want %q", n, g, w)
				}
				if !validObjectID.MatchString(g) {
					t.Errorf("%q → %q: not [a-z0-9_]", n, g)
				}
			}
			ids := slices.Collect(maps.Values(got))
			slices.Sort(ids)
			if len(slices.Compact(ids)) != len(tt.names) {
				t.Errorf("ids collide: %v", got)
			}
			// Deterministic, whatever the order.
			rev := slices.Clone(tt.names)
			slices.Reverse(rev)
			if again := ObjectIDs(rev); !maps.Equal(again, got) {
				t.Errorf("in another order: %v, first %v", again, got)
			}
		})
	}
}

func TestNodeID(t *testing.T) {
	for in, want := range map[string]string{
		"mqtt-rules-host.lan": "mqtt-rules-host_lan",
		"rules_1":             "rules_1",
		"a/b c":               "a_b_c",
		"":                    "mqtt-rules",
	} {
		if got := NodeID(in); got != want {
			t.Errorf("NodeID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConfigs checks every entity's discovery payload: valid JSON with
// Home Assistant's field names, topics and templates.
func TestConfigs(t *testing.T) {
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "home.yaml", Data: []byte(`
rules:
  - name: kitchen-too-hot
    topic: home/kitchen/temperature
    when: payload.value > 30
    actions: [{log: hot}]
  - name: freezer_open
    topic: freezer/door
    when: payload == "open"
    clear_when: payload == "closed"
    repeat: 5m
    actions: [{log: open}]
`)})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Prefix: "ha", ClientID: "rules-1", Version: "1.2.3", StatusTopic: "mqtt-rules/rules-1/status", RuleTopics: "mqtt-rules/rules-1/rule/"}
	cfgs := Configs(o, rs.Rules)
	var topics []string
	for _, c := range cfgs {
		topics = append(topics, c.Topic)
	}
	wantTopics := []string{
		"ha/switch/rules-1/kitchen_too_hot/config",
		"ha/sensor/rules-1/kitchen_too_hot_fires/config",
		"ha/sensor/rules-1/kitchen_too_hot_last_fired/config",
		"ha/switch/rules-1/freezer_open/config",
		"ha/sensor/rules-1/freezer_open_fires/config",
		"ha/sensor/rules-1/freezer_open_last_fired/config",
		"ha/button/rules-1/freezer_open_ack/config",
	}
	if !slices.Equal(topics, wantTopics) {
		t.Fatalf("topics\n got %q\nwant %q", topics, wantTopics)
	}
	common := map[string]any{
		"availability_topic":    "mqtt-rules/rules-1/status",
		"payload_available":     "online",
		"payload_not_available": "offline",
		"qos":                   float64(1),
		"device": map[string]any{
			"identifiers": []any{"mqtt-rules_rules-1"}, "name": "mqtt-rules rules-1",
			"sw_version": "1.2.3", "manufacturer": "mqtt-rules", "model": "rules engine",
		},
		"origin": map[string]any{"name": "mqtt-rules", "sw_version": "1.2.3"},
	}
	const state = "mqtt-rules/rules-1/rule/kitchen-too-hot/state"
	want := map[string]map[string]any{
		wantTopics[0]: {
			"name": "kitchen-too-hot", "unique_id": "rules-1_kitchen_too_hot",
			"default_entity_id": "switch.mqtt_rules_kitchen_too_hot", "object_id": "mqtt_rules_kitchen_too_hot",
			"icon": "mdi:robot", "command_topic": "mqtt-rules/rules-1/rule/kitchen-too-hot/set", "state_topic": state,
			"payload_on": "ON", "payload_off": "OFF", "state_on": "ON", "state_off": "OFF",
			"value_template": "{{ 'ON' if value_json.enabled else 'OFF' }}",
		},
		wantTopics[1]: {
			"name": "kitchen-too-hot fires", "unique_id": "rules-1_kitchen_too_hot_fires",
			"default_entity_id": "sensor.mqtt_rules_kitchen_too_hot_fires", "object_id": "mqtt_rules_kitchen_too_hot_fires",
			"icon": "mdi:counter", "state_topic": state, "value_template": "{{ value_json.fires }}", "state_class": "total_increasing",
		},
		wantTopics[2]: {
			"name": "kitchen-too-hot last fired", "unique_id": "rules-1_kitchen_too_hot_last_fired",
			"default_entity_id": "sensor.mqtt_rules_kitchen_too_hot_last_fired", "object_id": "mqtt_rules_kitchen_too_hot_last_fired",
			"state_topic": state, "device_class": "timestamp",
			"value_template": "{{ value_json.last_fired if value_json.last_fired else 'None' }}",
		},
		wantTopics[6]: {
			"name": "freezer_open acknowledge", "unique_id": "rules-1_freezer_open_ack",
			"default_entity_id": "button.mqtt_rules_freezer_open_ack", "object_id": "mqtt_rules_freezer_open_ack",
			"icon": "mdi:bell-check", "command_topic": "mqtt-rules/rules-1/rule/freezer_open/ack", "payload_press": AckAll,
		},
	}
	for _, c := range cfgs {
		var got map[string]any
		if err := json.Unmarshal(c.Payload, &got); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", c.Topic, err, c.Payload)
		}
		// Every entity names its entity id both ways: default_entity_id
		// (Home Assistant 2025.10 on) and object_id (before).
		component := strings.Split(c.Topic, "/")[1]
		if got["default_entity_id"] != component+"."+got["object_id"].(string) {
			t.Errorf("%s: default_entity_id %v, object_id %v: want %s.OBJECT_ID", c.Topic, got["default_entity_id"], got["object_id"], component)
		}
		w, ok := want[c.Topic]
		if !ok {
			continue
		}
		w = maps.Clone(w)
		maps.Copy(w, common)
		wb, _ := json.Marshal(w)
		gb, _ := json.Marshal(got)
		if string(wb) != string(gb) {
			t.Errorf("%s\n got %s\nwant %s", c.Topic, gb, wb)
		}
	}
}
