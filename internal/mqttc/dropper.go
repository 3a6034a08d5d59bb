package mqttc

import "github.com/mqtt-rules/mqtt-rules/actions"

// DropsProperties implements actions.PropertyDropper: a publish's MQTT 5
// properties are dropped once the connection speaks MQTT 3.1.1 (before it
// connected, the protocol is not known yet and nothing is reported). The
// broker name is the caller's routing; a Client is one broker.
func (c *Client) DropsProperties(string) bool { return c.Protocol() == "3.1.1" }

var _ actions.PropertyDropper = (*Client)(nil)
