// Command testdb is the database plugin the serve tests drive.
// TESTDB_MODE picks how its factory misbehaves.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"

	"github.com/plugkit/vaultplugin/dbserve"
)

func main() {
	var calls atomic.Int64
	dbserve.Run(func() (interface{}, error) {
		n := calls.Add(1)
		switch os.Getenv("TESTDB_MODE") {
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
		return echoDB{}, nil
	}, dbserve.WithVersion("v0.3.0"))
}

// echoDB fails every NewUser with an error that quotes the password, as a
// careless driver would.
type echoDB struct{}

func (echoDB) Initialize(_ context.Context, req dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	if pw, _ := req.Config["password"].(string); pw != "" {
		return dbplugin.InitializeResponse{}, fmt.Errorf("cannot log in with password %s", pw)
	}
	return dbplugin.InitializeResponse{Config: req.Config}, nil
}

func (echoDB) NewUser(_ context.Context, req dbplugin.NewUserRequest) (dbplugin.NewUserResponse, error) {
	return dbplugin.NewUserResponse{}, fmt.Errorf("CREATE USER x WITH PASSWORD '%s' failed", req.Password)
}

func (echoDB) UpdateUser(context.Context, dbplugin.UpdateUserRequest) (dbplugin.UpdateUserResponse, error) {
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
func (echoDB) Close() error          { return nil }
