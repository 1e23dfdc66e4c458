package server

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// startupWatch is the logger handed to go-plugin. go-plugin's Serve
// reports a listener, TLS or protocol failure only as an error record and
// then returns as if it had served (sdk/plugin.Serve then returns nil and a
// naive main exits 0). Intercepting those records is the only way to learn
// that serving failed, and why.
type startupWatch struct {
	hclog.Logger
	mu    sync.Mutex
	first error
	hint  string
}

// errAborted marks a stop requested before serving started.
var errAborted = errors.New("aborted")

// goPluginStartupErrors are the messages go-plugin's server.go logs before
// returning from Serve without serving; "grpc server" is logged when the
// gRPC server's Serve fails after the handshake.
var goPluginStartupErrors = map[string]string{
	"plugin init error": "creating the plugin's listener",
	"plugin tls init":   "configuring TLS",
	"protocol init":     "initialising the plugin protocol",
	"grpc server":       "serving gRPC",
}

// Error records go-plugin's startup failures instead of logging them: the
// failure is reported once, with a hint, when Serve returns.
func (w *startupWatch) Error(msg string, args ...interface{}) {
	what, ok := goPluginStartupErrors[msg]
	if !ok {
		w.Logger.Error(msg, args...)
		return
	}
	var cause error = errors.New(msg)
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k == "error" {
			if e, ok := args[i+1].(error); ok {
				cause = e
			} else {
				cause = fmt.Errorf("%v", args[i+1])
			}
		}
	}
	hint := ""
	if msg == "plugin init error" {
		hint = "the plugin could not create its socket: check that the temporary directory (TMPDIR, PLUGIN_UNIX_SOCKET_DIR) exists and is writable"
	}
	w.record(fmt.Errorf("%s: %w", what, cause), hint)
}

// record keeps the first failure: later ones are consequences.
func (w *startupWatch) record(err error, hint string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil {
		w.first, w.hint = err, hint
	}
}

func (w *startupWatch) abort(err error) { w.record(fmt.Errorf("%w: %w", errAborted, err), "") }

func (w *startupWatch) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}
