//go:build !linux

package check

import (
	"fmt"
	"runtime"
)

// dropIPCLock does nothing outside Linux, which alone has CAP_IPC_LOCK.
func dropIPCLock() error {
	return fmt.Errorf("%s has no CAP_IPC_LOCK to drop", runtime.GOOS)
}
