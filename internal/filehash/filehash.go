// Package filehash computes a file's sha256, as `vault plugin register
// -sha256` and the plugin catalog's check of a binary want it.
package filehash

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

// SHA256 returns the sha256 of the file at path.
func SHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("hashing %s: %w", path, err)
	}
	return h.Sum(nil), nil
}
