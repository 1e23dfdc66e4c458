// Command testdb is the database plugin the serve tests drive.
// TESTDB_MODE picks how its factory misbehaves. A copy of the binary whose
// name ends in "--MODE" runs with that mode instead, and "--v2" reports
// v0.4.0: the servetest tests upgrade a plugin to such a copy. Under
// TESTDB_INIT_FILE each Initialize that succeeds records its config and
// VerifyConnection there, one JSON line each.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"

	"github.com/plugkit/vaultplugin/dbserve"
)

func main() {
	var calls atomic.Int64
	mode, version := os.Getenv("TESTDB_MODE"), "v0.3.0"
	if _, named, ok := strings.Cut(strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe"), "--"); ok {
		mode = named
	}
	if mode == "v2" {
		version = "v0.4.0"
	}
	dbserve.Run(func() (interface{}, error) {
		n := calls.Add(1)
		switch mode {
		case "panic-later":
			// The instance built before serving is fine; every
			// connection's instance after it panics.
			if n > 1 {
				panic("the factory panicked on purpose, after serving started")
			}
		case "factoryerr":
			return nil, errors.New("the factory was told to fail")
		case "wrongtype":
			return "not a database", nil
		case "panic":
			panic("the factory panicked on purpose")
		}
		return echoDB{closed: new(atomic.Bool), initErr: mode == "initerr"}, nil
	}, dbserve.WithVersion(version))
}

// echoDB fails every NewUser with an error that quotes the password, as a
// careless driver would. Under TESTDB_STOP_FILE, an UpdateUser that starts,
// or still runs, once Close began is recorded there as a violation (the
// test process cannot be failed from here) and fails.
type echoDB struct {
	closed  *atomic.Bool
	initErr bool // mode initerr: Initialize refuses every configuration
}

func (d echoDB) Initialize(_ context.Context, req dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	if d.initErr {
		return dbplugin.InitializeResponse{}, errors.New("this version refuses the configuration")
	}
	if pw, _ := req.Config["password"].(string); pw != "" {
		return dbplugin.InitializeResponse{}, fmt.Errorf("cannot log in with password %s", pw)
	}
	if f := os.Getenv("TESTDB_INIT_FILE"); f != "" {
		line, _ := json.Marshal(map[string]any{"config": req.Config, "verify": req.VerifyConnection})
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fh.Write(append(line, '\n'))
			fh.Close()
		}
	}
	// The config the engine stores: what was given, with what a driver
	// adds (a real plugin may fill in defaults).
	conf := map[string]any{"stored": true}
	for k, v := range req.Config {
		conf[k] = v
	}
	return dbplugin.InitializeResponse{Config: conf}, nil
}

func (echoDB) NewUser(_ context.Context, req dbplugin.NewUserRequest) (dbplugin.NewUserResponse, error) {
	return dbplugin.NewUserResponse{}, fmt.Errorf("CREATE USER x WITH PASSWORD '%s' failed", req.Password)
}

func (d echoDB) UpdateUser(context.Context, dbplugin.UpdateUserRequest) (dbplugin.UpdateUserResponse, error) {
	if d.closed.Load() {
		return dbplugin.UpdateUserResponse{}, violation("a request reached the database after its Close")
	}
	if os.Getenv("TESTDB_STOP_FILE") != "" {
		time.Sleep(time.Millisecond)
	}
	if d.closed.Load() {
		return dbplugin.UpdateUserResponse{}, violation("Close ran while a request was in flight")
	}
	return dbplugin.UpdateUserResponse{}, nil
}

// DeleteUser panics for the user "panic", as a buggy driver would.
func (echoDB) DeleteUser(_ context.Context, req dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	if req.Username == "panic" {
		panic("DeleteUser was told to panic")
	}
	return dbplugin.DeleteUserResponse{}, nil
}

func (echoDB) Type() (string, error) { return "echo", nil }

func (d echoDB) Close() error {
	d.closed.Store(true)
	if os.Getenv("TESTDB_STOP_FILE") != "" {
		// As closing a real connection pool takes a while: the window in
		// which a request must not reach us.
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// violation records what broke the stop's order in TESTDB_STOP_FILE and
// returns it as the call's error.
func violation(what string) error {
	if f := os.Getenv("TESTDB_STOP_FILE"); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(fh, what)
			fh.Close()
		}
	}
	return errors.New("violation: " + what)
}
