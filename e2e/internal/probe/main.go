// Command probe is a secrets engine that records what its host really sets
// up, for the test that checks package compat against each real host
// (e2e/compat_test.go). Each start appends one JSON line to the file named
// by VAULTPLUGIN_PROBE_LOG (given at `vault plugin register -env`): the
// process id, the arguments and the environment the host passed (values
// of the host's and go-plugin's variables, names only of the rest, and
// only the length of the two secret-bearing ones). Each backend the host
// sets up (one per mount, plus the one Vault sets up at registration to
// read the version) appends another. The mount answers `read pid` with
// the process id, so the test can tell whether two mounts share a
// process.
//
// It is served by serve.Run like any plugin of this library: what the
// host sets is recorded before serving starts, so the library cannot
// change it.
package main

import (
	"context"
	"encoding/json"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve"
)

// Version is what the probe reports; the test registers it with this version.
const Version = "v0.1.0"

// logEnv names the file the probe appends to.
const logEnv = "VAULTPLUGIN_PROBE_LOG"

// record is one line of the log.
type record struct {
	Event string    `json:"event"` // "start" or "backend"
	PID   int       `json:"pid"`
	PPID  int       `json:"ppid"`
	Time  time.Time `json:"time"`
	// start
	Args     []string          `json:"args,omitempty"`
	Env      map[string]string `json:"env,omitempty"`       // the host's and go-plugin's variables
	EnvNames []string          `json:"env_names,omitempty"` // every variable's name
	// backend
	BackendUUID string            `json:"backend_uuid,omitempty"`
	Config      map[string]string `json:"config,omitempty"`
}

var mu sync.Mutex

func write(r record) {
	path := os.Getenv(logEnv)
	if path == "" {
		return
	}
	r.PID, r.PPID, r.Time = os.Getpid(), os.Getppid(), time.Now()
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
}

// recorded reports whether the value of the variable named k is kept.
func recorded(k string) bool {
	for _, p := range []string{"VAULT_", "BAO_", "PLUGIN_", "VAULTPLUGIN_"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// secret reports whether only the length of k's value may be kept.
func secret(k string) bool {
	return strings.HasSuffix(k, "UNWRAP_TOKEN") || k == "PLUGIN_CLIENT_CERT"
}

func startRecord() record {
	r := record{Event: "start", Args: os.Args[1:], Env: map[string]string{}}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		r.EnvNames = append(r.EnvNames, k)
		switch {
		case !recorded(k):
		case secret(k):
			r.Env[k] = "<" + strconv.Itoa(len(v)) + " bytes>"
		default:
			r.Env[k] = v
		}
	}
	sort.Strings(r.EnvNames)
	return r
}

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	write(record{Event: "backend", BackendUUID: conf.BackendUUID, Config: conf.Config})
	b := &framework.Backend{
		BackendType: logical.TypeLogical,
		Help:        "probe: records what its host sets",
		Paths: []*framework.Path{{
			Pattern: "pid",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
						return &logical.Response{Data: map[string]any{"pid": os.Getpid()}}, nil
					},
				},
			},
		}},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func main() {
	write(startRecord())
	serve.Run(factory, serve.WithVersion(Version))
}
