// Package procfs reads what Linux's /proc says of processes, for the
// vaultplugin check and dev commands and for servetest on a real host;
// elsewhere its functions find nothing.
package procfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Zombie reports whether the process pid has exited and waits to be
// reaped: state Z in /proc/PID/stat.
func Zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state …: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && strings.HasPrefix(s[i+1:], " Z")
}

// Running lists, in order, the live processes whose executable is path
// (also after path was replaced, when /proc shows it "(deleted)").
func Running(path string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || (exe != path && exe != path+" (deleted)") || Zombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}
