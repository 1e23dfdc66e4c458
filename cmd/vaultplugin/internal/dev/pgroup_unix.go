//go:build unix

package dev

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts cmd in a process group of its own, so the
// terminal's Ctrl-C reaches only vaultplugin, which then stops cmd.
func setProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
