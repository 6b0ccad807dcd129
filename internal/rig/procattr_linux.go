package rig

import (
	"os/exec"
	"syscall"
)

// setChildAttrs puts a child in its own process group (a Ctrl-C at the terminal reaches only the
// harness, which then stops its children in order) and has the kernel kill it if the harness dies.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
