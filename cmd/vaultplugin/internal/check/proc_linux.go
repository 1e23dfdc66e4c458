package check

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// memoryStatus reports what the kernel says of the process pid's locked
// memory and its capability to lock it, for the mlock check; "" where
// the system cannot tell.
func memoryStatus(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	defer f.Close()
	var locked, capLock string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "VmLck":
			locked = v
		case "CapEff":
			if caps, err := strconv.ParseUint(v, 16, 64); err == nil {
				capLock = "without CAP_IPC_LOCK"
				if caps&(1<<capIPCLock) != 0 {
					capLock = "with CAP_IPC_LOCK"
				}
			}
		}
	}
	if locked == "" {
		return ""
	}
	return fmt.Sprintf("%s, VmLck %s", capLock, locked)
}
