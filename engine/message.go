package engine

import "time"

// Message is one MQTT message offered to the engine.
type Message struct {
	Topic    string
	Payload  []byte // owned by the engine from Handle on; the caller must not change it
	QoS      byte
	Retained bool
	Time     time.Time // when it was received; the zero time means now
}
