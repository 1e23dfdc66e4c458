package check

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// capIPCLock is CAP_IPC_LOCK's bit in a capability set.
const capIPCLock = unix.CAP_IPC_LOCK

// dropIPCLock removes CAP_IPC_LOCK from the inheritable, ambient and
// bounding sets of the calling thread, which it locks to the calling goroutine for good, so
// that a process that goroutine starts runs without the capability even
// when vaultplugin runs as root. That is how a plugin runs under Vault in
// its container image, where the vault binary holds the capability as a
// file capability, which its children do not inherit.
func dropIPCLock() error {
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading the capabilities: %w", err)
	}
	if data[0].Inheritable&(1<<capIPCLock) != 0 {
		data[0].Inheritable &^= 1 << capIPCLock
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("dropping CAP_IPC_LOCK from the inheritable set: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_IPC_LOCK, 0, 0, 0); err != nil {
		return fmt.Errorf("dropping CAP_IPC_LOCK from the bounding set: %w", err)
	}
	return nil
}
