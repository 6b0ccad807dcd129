//go:build !linux

package rig

import "os/exec"

// setChildAttrs does nothing outside Linux: the harness stops its children itself on the way out,
// but a harness killed with SIGKILL leaves them running.
func setChildAttrs(*exec.Cmd) {}
