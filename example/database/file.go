package htpasswd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File is an htpasswd file changed atomically under a lock.
type File struct {
	// Path is the file's absolute path.
	Path string
}

// Verify checks that the file can be written: it exists or can be created,
// and its directory accepts the temporary file of an atomic write.
func (f *File) Verify() error {
	return f.Update(func(*Contents) error { return nil })
}

// Update reads the file, applies change, and replaces the file with the
// result atomically: written to a temporary file in the same directory,
// synced, then renamed over the old one, all under the lock. If change
// returns an error nothing is written.
func (f *File) Update(change func(*Contents) error) error {
	// The lock is a separate file: the htpasswd file itself is replaced
	// by every write, and a lock on a replaced inode excludes no one.
	// Each call opens its own descriptor, and both flock(2) (Unix) and
	// LockFileEx (Windows) treat descriptors or handles from separate opens
	// independently, so the lock excludes the other goroutines of this
	// process as well as other processes.
	lock, err := os.OpenFile(f.Path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening the lock file of %s: %w", f.Path, err)
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return fmt.Errorf("locking %s: %w", f.Path, err)
	}
	defer unlockFile(lock) //nolint:errcheck // closing releases it too

	text, err := os.ReadFile(f.Path)
	mode := fs.FileMode(0o640)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading %s: %w", f.Path, err)
	default:
		if st, err := os.Stat(f.Path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	c := Parse(string(text))
	if err := change(c); err != nil {
		return err
	}
	return writeAtomic(f.Path, []byte(c.String()), mode)
}

func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file next to %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	// The rename is durable once the directory is synced.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
