//go:build unix

package actions

import (
	"os/exec"
	"syscall"
)

// newProcessGroup makes the program the leader of a new process group, so
// that a timeout kills whatever it started too.
func newProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills the program's process group: the program and
// every child that stayed in its group.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}
