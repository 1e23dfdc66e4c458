package dbserve_test

import (
	"context"
	"fmt"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/dbserve"
)

// New is a database plugin's factory, with the SDK's dbplugin.Factory
// signature.
func New() (interface{}, error) {
	var db dbplugin.Database // a real plugin returns its implementation
	return db, nil
}

// A database plugin's whole main. Run never returns.
func ExampleRun() {
	dbserve.Run(New)
}

// Serve returns instead of exiting; here it answers -version, as for a
// person, and shows that an invalid option is a usage error (exit 2).
func ExampleServe() {
	err := dbserve.Serve(context.Background(), New, dbserve.WithVersion("0.3.0"), dbserve.WithArgs("-version"))
	fmt.Println("error:", err)

	err = dbserve.Serve(context.Background(), New, dbserve.WithShutdownTimeout(0), dbserve.WithArgs("-version"))
	fmt.Println("exit code:", vaultplugin.ExitCode(err))
	// Output:
	// v0.3.0
	// error: <nil>
	// exit code: 2
}
