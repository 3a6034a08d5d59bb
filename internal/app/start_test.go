package app

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestFailedStartReleases: a Start that fails part way releases what it
// had started — the embedded broker's port, the state file (which one
// process can hold only once), the background goroutines — so that the
// next Start with the same settings succeeds.
func TestFailedStartReleases(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		bad  func(cfg *Config, dir string) // makes Start fail
		want string                        // in Start's error
	}{
		{"HTTP address in use, after everything else started", func(cfg *Config, _ string) {
			cfg.HTTP = busy.Addr().String()
		}, "address already in use"},
		{"state file unusable, after the embedded broker started", func(cfg *Config, dir string) {
			cfg.State = dir // a directory
		}, "state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := writeRules(t, "rules:\n  - name: r\n    topic: a\n    actions: [{log: x}]\n")
			stateDir := t.TempDir()
			cfg := Config{
				Rules:          []string{rules},
				EmbeddedBroker: fmt.Sprintf("127.0.0.1:%d", testbroker.FreePort(t)),
				State:          filepath.Join(stateDir, "state.db"),
				HTTP:           "off",
				ClientID:       "app-test-" + strings.ReplaceAll(t.Name(), "/", "-"),
				Logger:         testLogger(t),
			}
			bad := cfg
			tc.bad(&bad, stateDir)
			if a, err := Start(bad); err == nil || !strings.Contains(err.Error(), tc.want) {
				if a != nil {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					a.Close(ctx)
				}
				t.Fatalf("Start = %v, want an error containing %q", err, tc.want)
			}
			start(t, cfg) // the same broker address and state file
		})
	}
}
