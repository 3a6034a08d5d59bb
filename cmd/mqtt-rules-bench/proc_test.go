package main

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := []byte("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 3 0 100 1000000 500 18446744073709551615\n")
	got, err := parseStatCPU(stat)
	if err != nil || got != 1234+567 {
		t.Errorf("parseStatCPU = %d, %v; want %d", got, err, 1234+567)
	}
	for _, bad := range []string{"4242 no parens", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
}

func TestStatusKB(t *testing.T) {
	status := []byte("Name:\tmqtt-rules\nVmPeak:\t  800000 kB\nVmHWM:\t   15000 kB\nVmRSS:\t   12345 kB\n")
	for key, want := range map[string]int64{"VmRSS:": 12345, "VmHWM:": 15000} {
		if got, err := statusKB(status, key); err != nil || got != want {
			t.Errorf("statusKB(%s) = %d, %v; want %d", key, got, err, want)
		}
	}
	if _, err := statusKB(status, "VmSwap:"); err == nil {
		t.Error("missing key: no error")
	}
}

func TestSampleProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	hz := clockTicks()
	if hz <= 0 {
		t.Fatalf("clockTicks = %d", hz)
	}
	s, err := sampleProc(os.Getpid(), hz)
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKB <= 0 || s.HWMKB < s.RSSKB || s.CPU < 0 {
		t.Errorf("sample = %+v: want RSS > 0, HWM ≥ RSS, CPU ≥ 0", s)
	}
	if _, err := sampleProc(-1, hz); err == nil {
		t.Error("sampleProc(-1): no error")
	}
}
