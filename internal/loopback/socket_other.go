//go:build !unix

package loopback

import (
	"errors"
	"net"
)

// errNoSocket is why a unix socket is refused here. Windows has AF_UNIX
// sockets, but a socket file's mode does not limit who connects there
// (that takes an ACL, which this package does not set), so a socket would
// be open to every local user; a loopback port is no worse and is
// documented as such.
var errNoSocket = errors.New("a unix socket is not supported on this system: its file mode cannot keep other users out here; use a loopback HOST:PORT such as 127.0.0.1:0")

// CheckSocket refuses: see errNoSocket.
func CheckSocket(path, hostDir string) error { return errNoSocket }

// Socket is a listening unix socket; never made on this system.
type Socket struct{ net.Listener }

// Remove does nothing: no Socket is made on this system.
func (s *Socket) Remove() {}

// ListenSocket refuses: see errNoSocket.
func ListenSocket(path string) (*Socket, error) { return nil, errNoSocket }
