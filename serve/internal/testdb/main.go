// Command testdb is the database plugin the serve tests drive.
// TESTDB_MODE picks how its factory misbehaves.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"

	"github.com/plugkit/vaultplugin/serve"
)

func main() {
	serve.RunDatabase(func() (interface{}, error) {
		switch os.Getenv("TESTDB_MODE") {
		case "factoryerr":
			return nil, errors.New("the factory was told to fail")
		case "wrongtype":
			return "not a database", nil
		case "panic":
			panic("the factory panicked on purpose")
		}
		return echoDB{}, nil
	}, serve.WithVersion("v0.3.0"))
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

func (echoDB) DeleteUser(context.Context, dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	return dbplugin.DeleteUserResponse{}, nil
}

func (echoDB) Type() (string, error) { return "echo", nil }
func (echoDB) Close() error          { return nil }
