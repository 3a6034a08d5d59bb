package mqttc

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// Will is a message about the Client itself, such as a status topic's
// "offline" (Options.Will) or "online" (Options.OnlineMessage).
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// check refuses a message the broker would refuse, what says which option.
func (w *Will) check(what string) error {
	switch {
	case w.Topic == "" || strings.ContainsAny(w.Topic, "+#\x00"):
		return fmt.Errorf("%s topic %q: must not be empty or hold '+', '#' or NUL", what, w.Topic)
	case len(w.Topic) > mqttwire.MaxStringLength:
		return fmt.Errorf("%s topic of %d bytes is over the MQTT limit of %d", what, len(w.Topic), mqttwire.MaxStringLength)
	case !utf8.ValidString(w.Topic):
		return fmt.Errorf("%s topic %q: not UTF-8", what, w.Topic)
	case w.QoS > 2:
		return fmt.Errorf("%s QoS %d: want 0, 1 or 2", what, w.QoS)
	case len(w.Payload) > mqttwire.MaxStringLength:
		// CONNECT carries the will's payload with a two-byte length
		// (MQTT 3.1.1 §3.1.3.3); the online message has the same limit so
		// that the two stay interchangeable.
		return fmt.Errorf("%s payload of %d bytes is over the MQTT limit of %d", what, len(w.Payload), mqttwire.MaxStringLength)
	}
	return nil
}

// appendConnect311 appends an MQTT 3.1.1 CONNECT (protocol level 4) with
// an optional will [MQTT-3.1.2-9]: its flag, QoS and retain bits in the
// connect flags, its topic and payload after the client id
// [MQTT-3.1.3-1]. Without a will it is mqttwire.AppendConnect.
func appendConnect311(b []byte, c mqttwire.Connect, w *Will) ([]byte, error) {
	if w == nil {
		return mqttwire.AppendConnect(b, c)
	}
	for _, s := range []string{c.ClientID, c.Username, c.Password} {
		if len(s) > mqttwire.MaxStringLength {
			return b, fmt.Errorf("connect: string of %d bytes is over the MQTT limit of %d", len(s), mqttwire.MaxStringLength)
		}
	}
	const (
		flagWill   byte = 0x04
		flagRetain byte = 0x20
	)
	flags := flagWill | w.QoS<<3 // [MQTT-3.1.2-14]
	if w.Retain {
		flags |= flagRetain // [MQTT-3.1.2-17]
	}
	if c.CleanSession {
		flags |= mqttwire.ConnectFlagClean
	}
	n := 10 + 2 + len(c.ClientID) + 2 + len(w.Topic) + 2 + len(w.Payload)
	if c.Username != "" {
		flags |= mqttwire.ConnectFlagUsername | mqttwire.ConnectFlagPassword
		n += 2 + len(c.Username) + 2 + len(c.Password)
	}
	b = append(b, mqttwire.TypeConnect<<4)
	b = mqttwire.AppendRemainingLength(b, n)
	b = mqttwire.AppendString(b, "MQTT")
	b = append(b, mqttwire.Version311, flags, byte(c.KeepAlive>>8), byte(c.KeepAlive))
	b = mqttwire.AppendString(b, c.ClientID)
	b = mqttwire.AppendString(b, w.Topic)
	b = append(b, byte(len(w.Payload)>>8), byte(len(w.Payload)))
	b = append(b, w.Payload...)
	if c.Username != "" {
		b = mqttwire.AppendString(b, c.Username)
		b = mqttwire.AppendString(b, c.Password)
	}
	return b, nil
}

// publishStatus publishes w on the subscriber's session s: the online
// message after a connect, the will's message on a clean disconnect.
// At QoS 0 it is written; at QoS 1 it takes a packet id of the
// subscriber's (shared with SUBSCRIBE and UNSUBSCRIBE), and the returned
// channel gets the PUBACK (it is closed if the session ends first).
//
// QoS 2 is sent as QoS 1. The subscriber's session persists, and with it
// the broker's record of a QoS 2 publish whose PUBREL it has not had
// [MQTT-4.3.3]: after a connection (or a process) lost at that point, the
// next status publish that reuses the packet id would be taken for a
// duplicate and not delivered. A status message delivered twice is
// harmless.
func (c *Client) publishStatus(s *session, w *Will) (<-chan ackResult, error) {
	if s.publishQoS(w.QoS) == 0 {
		b := s.begin()
		b, err := s.appendPublish(b, w.Topic, w.Payload, 0, w.Retain, false, 0, nil)
		s.end(b)
		if err != nil {
			return nil, err
		}
		s.kickFlusher()
		ch := make(chan ackResult, 1)
		ch <- ackResult{}
		return ch, nil
	}
	_, ch, err := s.request(func(b []byte, id uint16) ([]byte, error) {
		return s.appendPublish(b, w.Topic, w.Payload, 1, w.Retain, false, id, nil)
	})
	return ch, err
}

// errStatusNotAcknowledged is the outcome of a status publish the broker did
// not acknowledge in time.
var errStatusNotAcknowledged = errors.New("not acknowledged by the broker")

// publishOffline publishes the will's message itself on the subscriber's
// session s before its DISCONNECT, on which the broker discards the will
// [MQTT-3.1.2-10]: a clean shutdown says "offline" as a crash would. It
// waits for the acknowledgement at QoS 1 and 2, at most timeout.
func (c *Client) publishOffline(s *session, timeout time.Duration) {
	w := c.s.Will
	if w == nil || s.isClosed() {
		return
	}
	ch, err := c.publishStatus(s, w)
	if err == nil {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case res, ok := <-ch:
			switch {
			case !ok:
				err = fmt.Errorf("connection lost: %w", s.err)
			case len(res.codes) > 0 && res.codes[0] >= 0x80:
				err = &mqttwire.ReasonError{Packet: mqttwire.TypePuback, Reason: mqttwire.ReasonCode(res.codes[0]), ReasonString: res.reason}
			}
		case <-t.C:
			err = errStatusNotAcknowledged
		}
	}
	if err != nil {
		c.sub.log.Warn("could not publish the will's message on a clean disconnect", "topic", w.Topic, "err", err)
		return
	}
	c.sub.log.Debug("published the will's message on a clean disconnect", "topic", w.Topic)
}
