// Command testplugin is the plugin the serve tests drive. The environment
// variable TESTPLUGIN_MODE picks the options it is served with, so that one
// binary covers every behaviour under test. A copy of the binary whose name
// ends in "--MODE[,MODE…]" adds those modes: the servetest tests upgrade a
// plugin to such a copy, which the environment (the same for both
// binaries, as Vault's catalog entry keeps it) could not tell apart. On a
// real host servetest runs a copy named NAME-SUFFIX, so what follows a
// "-" in a named mode is ignored (no mode has one).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve"
)

func main() {
	var greeting string
	var opts []serve.Option
	modes := strings.Split(os.Getenv("TESTPLUGIN_MODE"), ",")
	if _, named, ok := strings.Cut(strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe"), "--"); ok {
		for _, mode := range strings.Split(named, ",") {
			mode, _, _ = strings.Cut(mode, "-")
			modes = append(modes, mode)
		}
	}
	factoryErr := false
	for _, mode := range modes {
		switch mode {
		case "nomux":
			opts = append(opts, serve.WithoutMultiplexing())
		case "version":
			opts = append(opts, serve.WithVersion("1.2.3"))
		case "version2":
			opts = append(opts, serve.WithVersion("2.0.0"))
		case "factoryerr":
			factoryErr = true
		case "badversion":
			opts = append(opts, serve.WithVersion("not-a-version"))
		case "unwrap1s":
			opts = append(opts, serve.WithUnwrapTimeout(time.Second))
		case "stop1s":
			// servetest does not replace a plugin that refuses requests
			// as stopping, as Vault does: the plugin waits for that up
			// to its shutdown timeout.
			opts = append(opts, serve.WithShutdownTimeout(time.Second))
		case "flags":
			opts = append(opts, serve.WithFlags(func(fs *flag.FlagSet) {
				fs.StringVar(&greeting, "greeting", "hello", "what the greeting path answers")
			}))
		case "dupflag":
			opts = append(opts, serve.WithFlags(func(fs *flag.FlagSet) {
				fs.String("ca-cert", "", "clashes with Vault's flag")
			}))
		}
	}
	factory := func(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
		if factoryErr {
			return nil, errors.New("the factory was told to fail")
		}
		// A mount configured with fault=factory-panic panics in the
		// factory; the plugin's other mounts are built normally.
		if conf.Config["fault"] == "factory-panic" {
			panic("the factory was told to panic")
		}
		return newBackend(ctx, conf, greeting)
	}
	serve.Run(factory, opts...)
}

func newBackend(ctx context.Context, conf *logical.BackendConfig, greeting string) (logical.Backend, error) {
	// Set once Cleanup began: a request that runs after that reached a
	// backend whose connections a real plugin would have closed.
	var cleaned atomic.Bool
	secret := leaseSecret()
	b := &framework.Backend{
		Secrets:      []*framework.Secret{secret},
		Help:         "A backend for the serve tests.",
		BackendType:  logical.TypeLogical,
		PathsSpecial: &logical.Paths{Unauthenticated: []string{"login"}},
		Paths: append(append(probePaths(conf.System), leasePaths(secret)...), []*framework.Path{
			{
				Pattern: "kv/" + framework.GenericNameRegex("key"),
				Fields:  map[string]*framework.FieldSchema{"key": {Type: framework.TypeString}, "value": {Type: framework.TypeString}},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.UpdateOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
						return nil, req.Storage.Put(ctx, &logical.StorageEntry{Key: d.Get("key").(string), Value: []byte(d.Get("value").(string))})
					}},
					logical.ReadOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
						e, err := req.Storage.Get(ctx, d.Get("key").(string))
						if err != nil || e == nil {
							return nil, err
						}
						return &logical.Response{Data: map[string]interface{}{"value": string(e.Value)}}, nil
					}},
				},
			},
			{
				// panic panics inside the request, as a buggy handler would.
				Pattern: "panic",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
						panic("the handler was told to panic")
					}},
				},
			},
			{
				// panic-exists panics in the existence check Vault makes
				// before a write.
				Pattern: "panic-exists",
				ExistenceCheck: func(context.Context, *logical.Request, *framework.FieldData) (bool, error) {
					panic("the existence check was told to panic")
				},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.CreateOperation: &framework.PathOperation{Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
						return nil, nil
					}},
				},
			},
			{
				// goroutines reports the process's goroutine count, for
				// the load test's leak check.
				Pattern: "goroutines",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
						return &logical.Response{Data: map[string]interface{}{"count": runtime.NumGoroutine()}}, nil
					}},
				},
			},
			{
				// vaultversion reports the Vault version the host's system
				// view gives the mount, for servetest's WithVaultVersion.
				Pattern: "vaultversion",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: func(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
						v, err := conf.System.VaultVersion(ctx)
						if err != nil {
							return nil, err
						}
						return &logical.Response{Data: map[string]interface{}{"version": v, "env": os.Getenv("VAULT_VERSION")}}, nil
					}},
				},
			},
			{
				// work is a request that takes a moment (1 ms, or its
				// delay parameter), then reads storage if its storage
				// parameter says so, for the stop tests: one that
				// starts, or is still running, once Cleanup began is a
				// violation, recorded in TESTPLUGIN_STOP_FILE (the test
				// process cannot be failed from here) and answered with
				// an error.
				Pattern: "work",
				Fields:  map[string]*framework.FieldSchema{"delay": {Type: framework.TypeString}, "storage": {Type: framework.TypeBool}},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
						if cleaned.Load() {
							return nil, violation("a request reached the backend after its Cleanup")
						}
						delay := time.Millisecond
						if d, err := time.ParseDuration(d.Get("delay").(string)); err == nil {
							delay = d
						}
						time.Sleep(delay)
						if cleaned.Load() {
							return nil, violation("Cleanup ran while a request was in flight")
						}
						// With storage=true it then reads storage, as a
						// handler that looks something up after a slow
						// call would.
						if d.Get("storage").(bool) {
							if _, err := req.Storage.Get(ctx, "work"); err != nil {
								return nil, err
							}
						}
						return &logical.Response{Data: map[string]interface{}{"ok": true}}, nil
					}},
				},
			},
			{
				Pattern: "info",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
						return &logical.Response{Data: map[string]interface{}{"pid": strconv.Itoa(os.Getpid()), "greeting": greeting}}, nil
					}},
				},
			},
		}...),
		// Vault's rollback manager calls PeriodicFunc through a request
		// (RollbackOperation) about once a minute; a mount configured with
		// fault=periodic-panic panics there.
		PeriodicFunc: func(context.Context, *logical.Request) error {
			if conf.Config["fault"] == "periodic-panic" {
				panic("PeriodicFunc was told to panic")
			}
			return nil
		},
		// A mount configured with fault=initialize-panic or
		// fault=cleanup-panic panics there; invalidating the key "panic"
		// panics on any mount.
		InitializeFunc: func(context.Context, *logical.InitializationRequest) error {
			if conf.Config["fault"] == "initialize-panic" {
				panic("Initialize was told to panic")
			}
			return nil
		},
		Invalidate: func(_ context.Context, key string) {
			if key == "panic" {
				panic("InvalidateKey was told to panic")
			}
		},
		Clean: func(context.Context) {
			cleaned.Store(true)
			if os.Getenv("TESTPLUGIN_STOP_FILE") != "" {
				// As a real Cleanup closing connections takes a while:
				// the window in which a request must not reach us.
				time.Sleep(50 * time.Millisecond)
			}
			if conf.Config["fault"] == "cleanup-panic" {
				panic("Cleanup was told to panic")
			}
			if f := os.Getenv("TESTPLUGIN_CLEANUP_FILE"); f != "" {
				fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
				if err == nil {
					// The mount's UUID tells the mounts apart.
					fh.WriteString("cleanup " + conf.BackendUUID + "\n")
					fh.Close()
				}
			}
		},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// violation records what broke the stop's order in TESTPLUGIN_STOP_FILE
// and returns it as the request's error.
func violation(what string) error {
	if f := os.Getenv("TESTPLUGIN_STOP_FILE"); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(fh, what)
			fh.Close()
		}
	}
	return errors.New("violation: " + what)
}
