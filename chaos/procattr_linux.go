package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs puts a child in its own process group (a Ctrl-C at the terminal reaches only the
// suite, which then stops its children in order) and has the kernel kill it if the suite dies.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
