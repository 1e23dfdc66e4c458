//go:build unix

package loopback

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSocketPath(t *testing.T) {
	for _, tc := range []struct {
		in, hostDir, want string
		ok                bool
		err               string
	}{
		{in: "127.0.0.1:0"},
		{in: "localhost:9100"},
		{in: "[::1]:0"},
		{in: "run/ops.sock"}, // neither prefixed nor absolute: Addr's to refuse
		{in: "/run/p/ops.sock", want: "/run/p/ops.sock", ok: true},
		{in: "unix:/run/p/ops.sock", want: "/run/p/ops.sock", ok: true},
		{in: "unix:/run/p/../q//ops.sock", want: "/run/q/ops.sock", ok: true},
		{in: "unix:ops.sock", hostDir: "/tmp/go-plugin-container", want: "/tmp/go-plugin-container/ops.sock", ok: true},
		{in: "unix:ops.sock", ok: true, err: "is relative, which names a file in the socket directory a container host gives the plugin (PLUGIN_UNIX_SOCKET_DIR), and none was given"},
		{in: "unix:", ok: true, err: "names no socket"},
		{in: "unix:/a\x00b", ok: true, err: "NUL"},
	} {
		got, ok, err := SocketPath(tc.in, tc.hostDir)
		if ok != tc.ok || got != tc.want {
			t.Errorf("SocketPath(%q, %q) = %q, %v, want %q, %v", tc.in, tc.hostDir, got, ok, tc.want, tc.ok)
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("SocketPath(%q): %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("SocketPath(%q): error %v, want one containing %q", tc.in, err, tc.err)
		}
	}
}

// privateDir is a new directory of mode 0700 with a short path (a socket
// path is short) whose parents pass checkDirs: t.TempDir's are /tmp (1777)
// and a 0700 directory of the test's.
func privateDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCheckSocketDirs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		parent fs.FileMode // of the directory above the socket's; 0 for none
		mode   fs.FileMode // of the socket's directory
		err    string
	}{
		{name: "private", mode: 0o700},
		{name: "readable by all", mode: 0o755},
		{name: "world-writable", mode: 0o777, err: "can be written by its group and every user (mode -rwxrwxrwx)"},
		{name: "world-writable, sticky", mode: 0o777 | fs.ModeSticky, err: "can be written by its group and every user"},
		{name: "only others write", mode: 0o703, err: "can be written by every user"},
		{name: "group-writable", mode: 0o770, err: "can be written by its group (mode -rwxrwx---)"},
		{name: "under a sticky world-writable parent", parent: 0o777 | fs.ModeSticky, mode: 0o700},
		{name: "under a world-writable parent", parent: 0o777, mode: 0o700, err: "above the socket's directory, can be written by its group and every user (mode -rwxrwxrwx) without the sticky bit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := privateDir(t)
			dir := base
			if tc.parent != 0 {
				dir = filepath.Join(base, "d")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				chmod(t, base, tc.parent)
			}
			chmod(t, dir, tc.mode)
			err := CheckSocket(filepath.Join(dir, "ops.sock"), "")
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "chmod go-w") {
				t.Fatalf("err = %v, want one containing %q and the fix", err, tc.err)
			}
			// The host's socket directory is exempt: go-plugin makes it
			// 0770 for the host's group.
			if tc.parent == 0 {
				if err := CheckSocket(filepath.Join(dir, "ops.sock"), dir+"/"); err != nil {
					t.Errorf("in the host's socket directory: %v", err)
				}
			}
		})
	}
	t.Run("symbolic link to a world-writable directory", func(t *testing.T) {
		base := privateDir(t)
		open := filepath.Join(base, "open")
		if err := os.Mkdir(open, 0o700); err != nil {
			t.Fatal(err)
		}
		chmod(t, open, 0o777)
		link := filepath.Join(base, "link")
		if err := os.Symlink(open, link); err != nil {
			t.Fatal(err)
		}
		if err := CheckSocket(filepath.Join(link, "ops.sock"), ""); err == nil || !strings.Contains(err.Error(), open+" can be written by") {
			t.Errorf("err = %v, want the link's target refused", err)
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root can give a directory away")
		}
		dir := privateDir(t)
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := CheckSocket(filepath.Join(dir, "ops.sock"), ""); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534, not to the plugin's user (uid 0) or root") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if err := CheckSocket(filepath.Join(privateDir(t), "no", "ops.sock"), ""); err == nil || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want not exist", err)
		}
	})
	t.Run("too long", func(t *testing.T) {
		long := "/" + strings.Repeat("d", maxSocketPath()-tempOverhead) + "/s"
		if err := CheckSocket(long, ""); err == nil || !strings.Contains(err.Error(), "too long for a unix socket") {
			t.Errorf("err = %v", err)
		}
	})
}

func chmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSocketExisting(t *testing.T) {
	dir := privateDir(t)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckSocket(file, ""); !errors.Is(err, errNotSocket) || !strings.Contains(err.Error(), "(a regular file): remove it or choose another path") {
		t.Errorf("a regular file: %v", err)
	}
	if err := CheckSocket(dir, ""); !errors.Is(err, errNotSocket) {
		t.Errorf("a directory: %v", err)
	}

	live, err := ListenSocket(filepath.Join(dir, "live.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := CheckSocket(filepath.Join(dir, "live.sock"), ""); err == nil || !strings.Contains(err.Error(), "is in use: another process listens on it") {
		t.Errorf("a live socket: %v", err)
	}
	if _, err := ListenSocket(filepath.Join(dir, "live.sock")); err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Errorf("listening on a live socket: %v", err)
	}
}

func TestListenSocket(t *testing.T) {
	dir := privateDir(t)
	path := filepath.Join(dir, "ops.sock")

	// A killed plugin leaves its socket: closed without removing the file.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if err := CheckSocket(path, ""); err != nil {
		t.Fatalf("a stale socket of ours: %v", err)
	}

	s, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %s, want a socket with mode 0600", fi.Mode())
	}
	if uid, _ := owner(fi); uid != os.Geteuid() {
		t.Errorf("owned by uid %d, want %d", uid, os.Geteuid())
	}
	if got := s.Addr().String(); got != path {
		t.Errorf("Addr %q, want %q", got, path)
	}
	// Only the socket is left in the directory: the one it was bound in
	// is gone.
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %v, want the socket only", entries)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := s.Accept()
		if err == nil {
			_, err = c.Write([]byte("hi"))
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Errorf("read %q, %v", buf, err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}

	s.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Close removed the socket (Remove's job): %v", err)
	}
	s.Remove()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove: %v", err)
	}
}

// Remove leaves a file that replaced the socket alone.
func TestRemoveOnlyOurs(t *testing.T) {
	dir := privateDir(t)
	path := filepath.Join(dir, "ops.sock")
	s, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("someone else's"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Remove()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Remove removed a file that was not its socket: %v", err)
	}
}
