//go:build windows

package check

import (
	"os"

	"golang.org/x/sys/windows"
)

// alive reports whether the process pid still runs.
func alive(pid int) bool {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h) //nolint:errcheck // nothing to do about it
	ev, err := windows.WaitForSingleObject(h, 0)
	return err == nil && ev != windows.WAIT_OBJECT_0
}

// kill ends the process pid at once.
func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
		_ = p.Release()
	}
}
