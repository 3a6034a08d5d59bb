package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/readyz":
			http.Error(w, "not connected to the broker", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more

	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{"healthy", []string{srv.URL + "/healthz"}, exitOK, srv.URL + "/healthz: ok\n", ""},
		{"503", []string{srv.URL + "/readyz"}, exitInvalid, "", "503 Service Unavailable \"not connected to the broker\""},
		{"404", []string{srv.URL + "/nope"}, exitInvalid, "", "404 Not Found"},
		{"refused", []string{closed.URL + "/healthz"}, exitInvalid, "", "mqtt-rules healthcheck: Get "},
		{"flag after URL", []string{srv.URL + "/healthz", "--timeout", "2s"}, exitOK, srv.URL + "/healthz: ok\n", ""},
		{"not a URL", []string{"127.0.0.1:9464"}, exitUsage, "", "is not an http:// or https:// URL"},
		{"two URLs", []string{srv.URL, srv.URL}, exitUsage, "", "Usage: mqtt-rules healthcheck"},
		{"bad flag", []string{"--timeout", "soon"}, exitUsage, "", "invalid value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit = %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if stdout != tc.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout, tc.wantStdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tc.wantStderr)
			}
		})
	}
}
