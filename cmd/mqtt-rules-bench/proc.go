package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"time"
)

// procSample is a process's CPU time and memory at one moment, from
// /proc/PID/stat (utime+stime) and /proc/PID/status (VmRSS, VmHWM).
type procSample struct {
	CPU   time.Duration // user + system CPU time so far
	RSSKB int64         // resident set size
	HWMKB int64         // peak resident set size since the process started
}

// atClkTck is the auxiliary-vector key of the kernel's USER_HZ.
const atClkTck = 17

// clockTicks returns USER_HZ, the unit of utime and stime in
// /proc/PID/stat, from this process's auxiliary vector (100 if unknown).
func clockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for ; len(b) >= 16; b = b[16:] {
		k, v := binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[8:])
		if k == atClkTck && v > 0 {
			return int64(v)
		}
		if k == 0 {
			break
		}
	}
	return 100
}

// sampleProc reads the CPU time and memory of process pid.
func sampleProc(pid int, ticksPerSec int64) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	ticks, err := parseStatCPU(stat)
	if err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	s.CPU = time.Duration(ticks * int64(time.Second) / ticksPerSec)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	if s.RSSKB, err = statusKB(status, "VmRSS:"); err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	if s.HWMKB, err = statusKB(status, "VmHWM:"); err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	return s, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15, in clock ticks) of a
// /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no command name", stat)
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err := strconv.ParseInt(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	stime, err := strconv.ParseInt(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return utime + stime, nil
}

// statusKB returns the value in kB of the /proc/PID/status line starting
// with key (e.g. "VmRSS:").
func statusKB(status []byte, key string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status %s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("status: no %s line", key)
}
