package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqtt-rules/mqtt-rules/internal/dryrun"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// waitUntil polls cond every 10 ms until it holds, failing the test after
// timeout with what describe says.
func waitUntil(t *testing.T, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readCapture reads every record of a capture file.
func readCapture(t *testing.T, path string) []dryrun.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := dryrun.NewCaptureReader(f, path)
	var out []dryrun.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

func lines(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

// TestRecordThenReplay records from a real mosquitto until the context
// ends (as SIGINT does), then replays the capture.
func TestRecordThenReplay(t *testing.T) {
	b := testbroker.Mosquitto(t)
	out := filepath.Join(t.TempDir(), "capture.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncWriter{w: &bytes.Buffer{}}
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- cli(ctx, []string{"record", "--broker", b.URL(), "--topic", "door/#", "--topic", "raw/+", "--out", out}, io.Discard, stderr)
	}()
	logged := func() string { stderr.mu.Lock(); defer stderr.mu.Unlock(); return stderr.w.String() }
	waitUntil(t, 10*time.Second, func() bool { return strings.Contains(logged(), "recording ") }, logged)

	testbroker.Publish(t, b.URL(), "door/garage", []byte("open"), 1, false)
	testbroker.Publish(t, b.URL(), "elsewhere", []byte("not recorded"), 1, false)
	testbroker.Publish(t, b.URL(), "raw/bin", []byte{0xff, 0x00, 'x'}, 0, false)
	testbroker.Publish(t, b.URL(), "door/garage/battery", []byte("7"), 1, true)
	// Written within a flush interval, before the recorder stops.
	waitUntil(t, 10*time.Second, func() bool { return lines(out) == 3 }, func() string { return fmt.Sprintf("%d lines", lines(out)) })
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("record exit = %d after cancel, want 0\n%s", code, logged())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("record did not stop")
	}
	if !strings.Contains(logged(), "recorded 3 messages to "+out) {
		t.Errorf("stderr = %q", logged())
	}

	raw, _ := os.ReadFile(out)
	if !strings.Contains(string(raw), `"payload":"/wB4","encoding":"base64"`) {
		t.Errorf("the binary payload is not base64 in the file:\n%s", raw)
	}
	recs := readCapture(t, out)
	want := []dryrun.Record{
		{Topic: "door/garage", Payload: []byte("open"), QoS: 1},
		{Topic: "raw/bin", Payload: []byte{0xff, 0x00, 'x'}, QoS: 0},
		{Topic: "door/garage/battery", Payload: []byte("7"), QoS: 1, Retain: false}, // retain is set only for messages sent on subscribing
	}
	if len(recs) != len(want) {
		t.Fatalf("recorded %d messages, want %d:\n%s", len(recs), len(want), raw)
	}
	for i, w := range want {
		r := recs[i]
		if r.Topic != w.Topic || !bytes.Equal(r.Payload, w.Payload) || r.QoS != w.QoS || r.Retain != w.Retain {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
		if r.Time.Before(start.Add(-time.Second)) || r.Time.After(time.Now()) || (i > 0 && r.Time.Before(recs[i-1].Time)) {
			t.Errorf("record %d time %v: want the time it arrived, in order", i, r.Time)
		}
	}

	// A retained message is recorded with its flag when the recorder subscribes.
	out2 := filepath.Join(t.TempDir(), "retained.jsonl")
	code, _, errs := runCLI(t, context.Background(), "record", "--broker", b.URL(), "--topic", "door/+/battery", "--out", out2, "--count", "1")
	if code != exitOK {
		t.Fatalf("record --count 1: exit %d: %s", code, errs)
	}
	if recs := readCapture(t, out2); len(recs) != 1 || !recs[0].Retain || recs[0].Topic != "door/garage/battery" {
		t.Errorf("retained capture = %+v", recs)
	}

	rules := writeTree(t, map[string]string{"doors.yaml": doorRules})
	code, stdout, errs := runCLI(t, context.Background(), "replay", out, "--rules", rules, "--until", "10m")
	if code != exitOK {
		t.Fatalf("replay: exit %d: %s", code, errs)
	}
	got := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(got) != 2 || !strings.HasSuffix(got[0], "battery  log warn: garage battery 7 %") ||
		!strings.HasSuffix(got[1], "door-open  publish alert/garage qos=1 retain=false payload=garage open") {
		t.Errorf("replay stdout:\n%s", stdout)
	}
	if want := recs[0].Time.Add(5 * time.Minute).Format(dryrun.FiringTimeFormat); !strings.HasPrefix(got[len(got)-1], want) {
		t.Errorf("the for fired at %q, want 5m after the recorded message, %s", got[len(got)-1], want)
	}
}

// TestRecordSIGINT stops the real binary with SIGINT: it flushes and
// exits 0.
func TestRecordSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	b := testbroker.Mosquitto(t)
	bin := buildBinary(t)
	out := filepath.Join(t.TempDir(), "capture.jsonl")
	p := startProc(t, bin, "record", "--broker", b.URL(), "--topic", "#", "--out", out)
	p.waitLog(t, "recording ", 10*time.Second)
	testbroker.Publish(t, b.URL(), "a/b", []byte("1"), 1, false)
	waitUntil(t, 10*time.Second, func() bool { return lines(out) == 1 }, func() string { return fmt.Sprintf("%d lines", lines(out)) })
	testbroker.Publish(t, b.URL(), "a/c", []byte("2"), 1, false)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "recorded ", 10*time.Second)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("record after SIGINT: %v, want exit 0", err)
	}
	if recs := readCapture(t, out); len(recs) < 1 || recs[0].Topic != "a/b" {
		t.Errorf("capture = %+v", recs)
	}
}

// TestRecordCleanSessionAndQoS: record subscribes at --qos, under
// --client-id, and leaves no session on the broker when it stops.
func TestRecordCleanSessionAndQoS(t *testing.T) {
	b := testbroker.Mosquitto(t)
	id := fmt.Sprintf("record-test-%d", time.Now().UnixNano())
	out := filepath.Join(t.TempDir(), "capture.jsonl")
	stderr := &syncWriter{w: &bytes.Buffer{}}
	logged := func() string { stderr.mu.Lock(); defer stderr.mu.Unlock(); return stderr.w.String() }
	done := make(chan int, 1)
	go func() {
		done <- cli(context.Background(), []string{"record", "--broker", b.URL(), "--topic", "q/#", "--qos", "0",
			"--client-id", id, "--count", "1", "--out", out}, io.Discard, stderr)
	}()
	waitUntil(t, 10*time.Second, func() bool { return strings.Contains(logged(), "recording ") }, logged)
	testbroker.Publish(t, b.URL(), "q/a", []byte("x"), 1, false)
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("record --count 1: exit %d\n%s", code, logged())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("record --count 1 did not stop")
	}
	if recs := readCapture(t, out); len(recs) != 1 || recs[0].Topic != "q/a" || recs[0].QoS != 0 {
		t.Errorf("capture = %+v, want q/a at QoS 0 (subscribed at 0, published at 1)", recs)
	}

	// A persistent connection under record's client id finds no session.
	opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetCleanSession(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as %s: %v", id, tok.Error())
	}
	defer c.Disconnect(0)
	if tok.(*paho.ConnectToken).SessionPresent() {
		t.Errorf("record left a session on the broker under its client id %s", id)
	}
}

// TestRecordRefused: a broker that refuses the connection stops record at
// once with its reason.
func TestRecordRefused(t *testing.T) {
	b := testbroker.Mosquitto(t, testbroker.WithConfig("allow_anonymous false"))
	code, _, errs := runCLI(t, context.Background(), "record", "--broker", b.URL(), "--topic", "#")
	// mosquitto speaks MQTT 5: its refusal comes with the reason code.
	if want := "connect to " + b.URL() + ": connection refused: 0x87 not authorized"; code != exitInvalid || !strings.Contains(errs, want) {
		t.Errorf("record on a refusing broker: exit %d, stderr %q; want exit %d and %q", code, errs, exitInvalid, want)
	}
}

func TestRecordErrors(t *testing.T) {
	closed := fmt.Sprintf("tcp://127.0.0.1:%d", testbroker.FreePort(t))
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"record", "--broker", closed}, exitUsage, "name at least one --topic"},
		{[]string{"record", "--topic", "a/#/b"}, exitUsage, "'#' must be the last level"},
		{[]string{"record", "--topic", "a", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"record", "--topic", "a", "--qos", "5"}, exitUsage, "--qos 5"},
		{[]string{"record", "--topic", "a", "--broker", "http://h"}, exitUsage, `unsupported scheme "http"`},
		{[]string{"record", "--topic", "a", "--broker", "tcp://h", "--ca-file", "ca.pem"}, exitUsage, "does not use TLS"},
		{[]string{"record", "--topic", "a", "--broker", "ssl://h", "--ca-file", "/nonexistent/ca.pem"}, exitUsage, "read CA file"},
		{[]string{"record", "--topic", "a", "--broker", closed}, exitInvalid, "connect to " + closed},
		{[]string{"record", "--topic", "a", "--broker", closed, "--out", "/nonexistent/dir/x.jsonl"}, exitInvalid, "/nonexistent/dir/x.jsonl"},
	} {
		code, _, errs := runCLI(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("mqtt-rules %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errs, tc.code, tc.err)
		}
	}
}
