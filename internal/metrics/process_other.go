//go:build !unix && !windows

package metrics

// readProcess reads nothing: this OS offers no process metrics portably.
func readProcess(*process) {}
