package engine

import (
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

// Message is one MQTT message offered to the engine.
type Message struct {
	Topic    string
	Payload  []byte // owned by the engine from Handle on; the caller must not change it
	QoS      byte
	Retained bool
	Time     time.Time // when it was received; the zero time means now

	// Broker names the broker it came from (docs/brokers.md); "": the
	// default one. Only the rules on that broker see it.
	Broker string
	// Properties are its MQTT 5 properties; nil under MQTT 3.1.1 or when
	// it has none.
	Properties *actions.Properties
}
