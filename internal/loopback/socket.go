package loopback

import (
	"fmt"
	"path/filepath"
	"strings"
)

// SocketDirEnv is the variable in which a host that runs the plugin in a
// container names the directory for the plugin's sockets: go-plugin's
// EnvUnixSocketDir (constants.go), set by go-plugin's client when it has a
// RunnerFunc (client.go, v1.6.0 line 718) and overridden by go-secure-stdlib's
// plugincontainer with the bind mount's path inside the container,
// /tmp/go-plugin-container (container_runner_linux.go, v0.4.2 lines 31 and 94).
const SocketDirEnv = "PLUGIN_UNIX_SOCKET_DIR"

// socketPrefix marks a unix socket in the operator's setting.
const socketPrefix = "unix:"

// SocketPath reports whether v names a unix socket rather than a HOST:PORT
// and, if so, returns its absolute, cleaned path. A socket is written
// "unix:/abs/path" or "/abs/path", or "unix:NAME" for NAME in hostDir, the
// directory the host gave the plugin for its sockets (SocketDirEnv; "" when
// the host gave none, and then a relative name is an error: the plugin's
// working directory is the host's, which the operator cannot know).
// Anything else is not a socket (ok false) and is left to Addr.
func SocketPath(v, hostDir string) (path string, ok bool, err error) {
	rest, prefixed := strings.CutPrefix(v, socketPrefix)
	if !prefixed && !strings.HasPrefix(v, "/") {
		return "", false, nil
	}
	switch {
	case rest == "":
		return "", true, fmt.Errorf("%q names no socket (want e.g. unix:/run/my-plugin/ops.sock)", v)
	case strings.ContainsRune(rest, 0):
		return "", true, fmt.Errorf("%q: a socket path cannot hold a NUL byte", v)
	case filepath.IsAbs(rest) || strings.HasPrefix(rest, "/"):
		return filepath.Clean(rest), true, nil
	case hostDir == "":
		return "", true, fmt.Errorf("%q is relative, which names a file in the socket directory a container host gives the plugin (%s), and none was given: use an absolute path such as unix:/run/my-plugin/ops.sock", v, SocketDirEnv)
	default:
		return filepath.Join(hostDir, rest), true, nil
	}
}
