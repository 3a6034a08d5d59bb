package dryrun

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// CaptureTimeFormat is how a capture writes times: RFC 3339 with
// nanoseconds, always nine digits.
const CaptureTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Record is one captured message: a line of a capture file (JSON lines,
// as `mqtt-rules record` writes them):
//
//	{"time":"2026-11-25T21:00:00.123456789Z","topic":"a/b","payload":"21.5","qos":1,"retain":false}
//
// A payload that is not valid UTF-8 is written in base64, with
// "encoding":"base64".
type Record struct {
	Time    time.Time
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

type recordJSON struct {
	Time     string  `json:"time"`
	Topic    string  `json:"topic"`
	Payload  *string `json:"payload"`
	Encoding string  `json:"encoding,omitempty"`
	QoS      *int    `json:"qos"`
	Retain   bool    `json:"retain"`
}

// AppendJSON appends the record as one JSON line, newline included.
func (r Record) AppendJSON(dst []byte) []byte {
	rj := recordJSON{Time: r.Time.Format(CaptureTimeFormat), Topic: r.Topic, Retain: r.Retain}
	q := int(r.QoS)
	rj.QoS = &q
	p := string(r.Payload)
	if !utf8.Valid(r.Payload) {
		p = base64.StdEncoding.EncodeToString(r.Payload)
		rj.Encoding = "base64"
	}
	rj.Payload = &p
	b, _ := json.Marshal(rj) // cannot fail: strings and numbers only
	dst = append(dst, b...)
	return append(dst, '\n')
}

// CaptureReader reads a capture file record by record.
type CaptureReader struct {
	r    *bufio.Reader
	name string
	line int
}

// NewCaptureReader reads a capture from r; name is what errors call it.
func NewCaptureReader(r io.Reader, name string) *CaptureReader {
	return &CaptureReader{r: bufio.NewReaderSize(r, 64<<10), name: name}
}

// Next returns the next record, or io.EOF after the last. Blank lines are
// skipped; a line that is not a record is an error naming file and line.
// Unknown fields are ignored.
func (c *CaptureReader) Next() (Record, error) {
	for {
		line, err := c.r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return Record{}, io.EOF
			}
			return Record{}, fmt.Errorf("read %s: %w", c.name, err)
		}
		c.line++
		if strings.TrimSpace(string(line)) == "" {
			continue
		}
		rec, perr := parseRecord(line)
		if perr != nil {
			return Record{}, fmt.Errorf("%s:%d: %w", c.name, c.line, perr)
		}
		return rec, nil
	}
}

// Line returns the line number of the record Next returned last.
func (c *CaptureReader) Line() int { return c.line }

func parseRecord(line []byte) (Record, error) {
	var rj recordJSON
	if err := json.Unmarshal(line, &rj); err != nil {
		return Record{}, fmt.Errorf("not a capture record (a JSON object with time, topic, payload, qos, retain): %w", err)
	}
	var rec Record
	if rj.Time == "" {
		return rec, errors.New("time missing")
	}
	t, err := time.Parse(time.RFC3339Nano, rj.Time)
	if err != nil {
		return rec, fmt.Errorf("time %q: not RFC 3339", rj.Time)
	}
	if rj.Topic == "" {
		return rec, errors.New("topic missing")
	}
	rec.Time, rec.Topic, rec.Retain = t, rj.Topic, rj.Retain
	if rj.QoS != nil {
		if *rj.QoS < 0 || *rj.QoS > 2 {
			return rec, fmt.Errorf("qos %d: want 0, 1 or 2", *rj.QoS)
		}
		rec.QoS = byte(*rj.QoS)
	}
	var payload string
	if rj.Payload != nil {
		payload = *rj.Payload
	}
	switch rj.Encoding {
	case "":
		rec.Payload = []byte(payload)
	case "base64":
		if rec.Payload, err = base64.StdEncoding.DecodeString(payload); err != nil {
			return rec, fmt.Errorf("payload: not base64: %w", err)
		}
	default:
		return rec, fmt.Errorf("encoding %q: want base64 or none", rj.Encoding)
	}
	return rec, nil
}
