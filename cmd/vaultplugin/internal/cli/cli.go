// Package cli is what vaultplugin's commands share about the command
// line: the exit codes, the errors that choose them, and how flags are
// parsed. The command table and the help text live in package main; the
// commands in check and dev return errors, so that one place turns every
// outcome into a stream and an exit code.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes, the same for every command.
const (
	ExitOK     = 0 // done; for check, no check failed
	ExitFailed = 1 // the command failed; for check, a check failed
	ExitUsage  = 2 // a bad flag or argument, or an unknown command
)

// Run runs a command once its flags are parsed, with the arguments that
// remain. An error wrapping a UsageError exits ExitUsage with the
// command's usage line; ErrFailed exits ExitFailed with nothing more said;
// any other error is printed and exits ExitFailed.
type Run func(args []string, stdout, stderr io.Writer) error

// UsageError is a mistake on the command line.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef is a UsageError with a message formatted as by fmt.Errorf.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ErrFailed is a failure the command has already reported on stdout (a
// check failed, and the report says which), so that stderr stays empty.
var ErrFailed = errors.New("failed")

// ParseFlags parses args with fs, and returns the arguments that are not
// flags. Flags may come after those arguments too, as in `vaultplugin
// check ./plugin -json`: a person adds a flag at the end of the line
// they just ran. After "--" every argument is kept as it is.
func ParseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		// Parse stopped either at an argument that is no flag, which it
		// leaves in left, or after a "--", which it consumed.
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			return append(rest, left...), nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}
