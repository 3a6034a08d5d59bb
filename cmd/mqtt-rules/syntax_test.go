package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateReportsYAMLSyntaxError(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "door.yaml")
	src := "rules:\n  - name: door\n    topic: {device}/state\n    actions: [{log: open}]\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, context.Background(), "validate", dir)
	if code != exitInvalid {
		t.Errorf("exit = %d, want %d", code, exitInvalid)
	}
	want := bad + `:3:12: did not find expected key (a value starting with { is read as a YAML mapping: quote it, e.g. topic: "{device}/state")` + "\n"
	if !strings.HasPrefix(errs, want) {
		t.Errorf("stderr:\n got %q\nwant it to start with %q", errs, want)
	}
}

func TestConfigReportsYAMLSyntaxError(t *testing.T) {
	_, err := parseRun(t, "broker: tcp://localhost:1883\nclient_id: rules: 1\n")
	want := `:2:17: mapping values are not allowed in this context (a value holding ": " must be quoted, e.g. client_id: "rules: 1")`
	if err == nil || !strings.HasPrefix(err.Error(), "config ") || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("err = %v\nwant config FILE%s", err, want)
	}
}
