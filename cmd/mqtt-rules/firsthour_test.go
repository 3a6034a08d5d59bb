package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestRunWithoutRulesWarns: run on a folder without rule files says so,
// naming the paths it searched — running in the source tree, --rules'
// default ./rules is a Go package, and nothing would ever fire.
func TestRunWithoutRulesWarns(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testbroker.FreePort(t))
	empty := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr syncWriter
	var buf bytes.Buffer
	stderr.w = &buf
	go func() {
		done <- cli(ctx, []string{"run", "--rules", empty, "--embedded-broker", addr, "--client-id", "empty-test", "--http", "off"}, &bytes.Buffer{}, &stderr)
	}()
	want := `msg="no rule files found: nothing will fire; rule files are *.yaml or *.yml under the --rules paths" searched=[` + empty + `]`
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.text(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning %q in:\n%s", want, stderr.text())
		}
		time.Sleep(10 * time.Millisecond) // polling the log with a deadline
	}
	cancel()
	<-done
	if n := strings.Count(stderr.text(), "http"); n != 0 {
		t.Errorf("with --http off the log mentions http %d times", n)
	}
}

// TestHTTPListeningLoggedOnce: the start-up log says where the HTTP server
// listens once.
func TestHTTPListeningLoggedOnce(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testbroker.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testbroker.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	stderr := syncWriter{w: &bytes.Buffer{}}
	go func() {
		done <- cli(ctx, []string{"run", "--rules", t.TempDir(), "--embedded-broker", addr, "--client-id", "http-once", "--http", httpAddr}, &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.text(), "mqtt-rules running") {
		if time.Now().After(deadline) {
			t.Fatalf("did not start:\n%s", stderr.text())
		}
		time.Sleep(10 * time.Millisecond) // polling the log with a deadline
	}
	cancel()
	<-done
	if n := strings.Count(stderr.text(), "http server listening"); n != 1 {
		t.Errorf("%d lines say the http server listens, want 1:\n%s", n, stderr.text())
	}
}

// TestHelpWritesFlagsAsTheDocsDo: -h lists --broker, not -broker.
func TestHelpWritesFlagsAsTheDocsDo(t *testing.T) {
	_, _, errs := runCLI(t, context.Background(), "run", "-h")
	if !strings.Contains(errs, "\n  --broker string\n") || strings.Contains(errs, "\n  -broker") {
		t.Errorf("run -h:\n%s", errs)
	}
	if !strings.Contains(errs, "  --rules PATH\n") {
		t.Errorf("run -h names the --rules argument badly:\n%s", errs)
	}
}

func (s *syncWriter) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
