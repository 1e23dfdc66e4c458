//go:build unix

package loopback

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// socketMode is the socket's mode: only the plugin's user may connect
// (connecting to a unix socket needs write permission on it). The endpoint
// shows the process's command line and memory profiles.
const socketMode fs.FileMode = 0o600

// probeTimeout bounds the connection that tells a live socket from a
// stale one. A listening socket accepts at once (the kernel queues the
// connection before the server accepts it), and a stale one refuses at
// once, so a second is only for a machine under heavy load.
const probeTimeout = time.Second

// tempPattern is the private directory ListenSocket binds in before the
// socket takes its name. It is short because a socket path is short: its
// full length is tempOverhead bytes more than the directory's.
const (
	tempPattern  = ".vp*"
	tempOverhead = len("/.vp") + 10 + len("/s") // os.MkdirTemp puts up to 10 digits for *
)

// errNotSocket is the failure for an existing file at the path that is not
// a socket: it may be anything of the operator's, so it is never removed.
var errNotSocket = errors.New("it exists and is not a socket")

// maxSocketPath is the longest socket path the system binds: sun_path is
// 108 bytes on Linux and 104 on the BSDs and macOS, one of which is the
// terminating NUL.
func maxSocketPath() int {
	if runtime.GOOS == "linux" || runtime.GOOS == "android" {
		return 107
	}
	return 103
}

// CheckSocket checks, without creating anything, that the operator
// endpoint may be served on a unix socket at path (absolute and clean, as
// SocketPath returns it): the path fits a socket address; its directory
// exists, can be written by this process, and no other user can add,
// remove or rename entries in it or in a directory above it; nothing but a
// socket of this user is at path, and no process listens on it. hostDir is
// the host's socket directory (SocketDirEnv, or ""): a path directly in it
// is exempt from the directory checks, since the host made it for the
// plugin's sockets (go-plugin makes it group-writable for the host's group,
// client.go v1.6.0 line 712) and the plugin's own gRPC socket is there.
func CheckSocket(path, hostDir string) error {
	dir := filepath.Dir(path)
	if limit := maxSocketPath(); len(path) > limit || len(dir)+tempOverhead > limit {
		return fmt.Errorf("%q is too long for a unix socket: this system allows %d bytes, and the plugin binds in a directory of its own in %s first, which takes %d bytes more than the directory: use a shorter path", path, limit, dir, tempOverhead)
	}
	if hostDir == "" || dir != filepath.Clean(hostDir) {
		if err := checkDirs(dir); err != nil {
			return err
		}
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("the plugin's user (uid %d) cannot create a socket in %s: %w", os.Geteuid(), dir, err)
	}
	return checkExisting(path)
}

// checkDirs refuses dir unless only this user (or root) can change what
// its names point at: dir and every directory above it must belong to
// this user or to root, dir must not be writable by its group or by
// others, and a directory above it only if it has the sticky bit, which
// keeps others from renaming or removing what they do not own (so
// /tmp/mine/ops.sock is accepted for a private /tmp/mine, and
// /tmp/ops.sock is not). A group-writable directory is refused even when
// the group has one member: which users a group holds cannot be read
// reliably, and the fix is one chmod. Symbolic links in dir are resolved
// first, so that what is checked is what the kernel will use.
func checkDirs(dir string) error {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("the socket's directory: %w", err)
	}
	euid := os.Geteuid()
	for d, first := resolved, true; ; d, first = filepath.Dir(d), false {
		fi, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("the socket's directory: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("the socket's directory %s is not a directory", d)
		}
		uid, ok := owner(fi)
		if !ok {
			return fmt.Errorf("the socket's directory %s: cannot read its owner", d)
		}
		mode := fi.Mode()
		switch {
		case uid != euid && uid != 0:
			return fmt.Errorf("%s belongs to uid %d, not to the plugin's user (uid %d) or root, so that user could replace the socket: put it in a directory of the plugin's user (mkdir -m 0700)", d, uid, euid)
		case first && mode.Perm()&0o022 != 0:
			return fmt.Errorf("the socket's directory %s can be written by %s (mode %s), who could replace the socket: use a directory only the plugin's user can write to (chmod go-w %s, or mkdir -m 0700 a new one)", d, writers(mode), mode.Perm(), d)
		case !first && mode.Perm()&0o022 != 0 && mode&fs.ModeSticky == 0:
			return fmt.Errorf("%s, above the socket's directory, can be written by %s (mode %s) without the sticky bit, so they could rename the directory and replace the socket: chmod go-w %s, or use another directory", d, writers(mode), mode.Perm(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// writers names who besides the owner may write, by mode.
func writers(mode fs.FileMode) string {
	switch p := mode.Perm(); {
	case p&0o022 == 0o022:
		return "its group and every user"
	case p&0o002 != 0:
		return "every user"
	default:
		return "its group"
	}
}

// owner is the uid that owns the file fi describes.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// checkExisting accepts nothing at path, or a stale socket of this user
// (ListenSocket replaces it: a plugin that was killed leaves its socket).
func checkExisting(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s: %w (a %s): remove it or choose another path", path, errNotSocket, describe(fi.Mode()))
	}
	if uid, ok := owner(fi); !ok || uid != os.Geteuid() {
		return fmt.Errorf("%s is a socket of uid %d, not of the plugin's user (uid %d): choose another path", path, uid, os.Geteuid())
	}
	if live(path) {
		return fmt.Errorf("%s is in use: another process listens on it (Vault starts one process per mount for a plugin it does not multiplex, and they cannot share a path: give each mount's plugin its own, or use a loopback port 0)", path)
	}
	return nil
}

// live reports whether a process accepts connections on the socket at path.
func live(path string) bool {
	c, err := net.DialTimeout("unix", path, probeTimeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// describe names a file type for an error.
func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsRegular():
		return "regular file"
	default:
		return "special file"
	}
}

// Socket is a listening unix socket made by ListenSocket.
type Socket struct {
	net.Listener
	path string
	fi   fs.FileInfo // the socket's file, to remove only our own
}

// Addr is the socket's final path, not the temporary one it was bound at.
func (s *Socket) Addr() net.Addr { return &net.UnixAddr{Name: s.path, Net: "unix"} }

// Remove removes the socket's file, if it is still the one ListenSocket
// made (a later process may have replaced a socket it found stale). Call
// it after closing the listener.
func (s *Socket) Remove() {
	if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.fi) {
		_ = os.Remove(s.path)
	}
}

// ListenSocket listens on a unix socket at path, which CheckSocket
// accepted, with mode 0600 and owned by this process's user, and with no
// moment at which anyone else could connect: it binds in a new directory
// of mode 0700 next to path, sets the mode, then links the socket to path,
// which fails rather than replaces if a file appeared there meanwhile.
// (Setting the process's umask instead would change it for every
// goroutine at once, and binding at path then calling chmod leaves a
// window in which the socket has the umask's mode.) A stale socket of
// this user at path is removed first. The listener does not remove the
// file when closed: call Remove.
func ListenSocket(path string) (_ *Socket, err error) {
	if err := checkExisting(path); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), tempPattern)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// Its name at bind time is gone once linked; Remove removes path.
	ln.SetUnlinkOnClose(false)
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	if err := os.Chmod(bound, socketMode); err != nil {
		return nil, err
	}
	if err := os.Link(bound, path); errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s is in use: another process created it while this one started", path)
	} else if err != nil {
		// A file system without hard links (some FUSE and network ones):
		// rename, which would replace a file that appeared since
		// checkExisting; only this user or root can make one there.
		if err := os.Rename(bound, path); err != nil {
			return nil, err
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	return &Socket{Listener: ln, path: path, fi: fi}, nil
}
