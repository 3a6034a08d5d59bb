//go:build !unix

package actions

import "os/exec"

// newProcessGroup does nothing where there are no Unix process groups.
func newProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the program; children it started may outlive it
// where there are no Unix process groups.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
