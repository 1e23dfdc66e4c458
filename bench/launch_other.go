//go:build !linux

package main

import "errors"

// recache needs Linux's fadvise; like the RSS figures, the bench measures
// on Linux only.
func recache(path string) error { return errors.New("bench measures on Linux only") }
