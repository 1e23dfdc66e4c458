// Package dbmetrics records a database plugin's calls in a
// metrics.Recorder. It is apart from package metrics so that a backend
// plugin, which links metrics, does not link the database SDK.
package dbmetrics

import (
	"context"
	"errors"
	"sync/atomic"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"

	"github.com/plugkit/vaultplugin/internal/metrics"
)

// Wrap wraps db so that its calls are recorded by method in r and it
// counts as a connection from a successful Initialize to its Close.
func Wrap(r *metrics.Recorder, db dbplugin.Database) dbplugin.Database {
	return &database{next: db, r: r}
}

type database struct {
	next        dbplugin.Database
	r           *metrics.Recorder
	initialized atomic.Bool
}

// errPanicked is what err holds while a call runs: a call that panics never
// assigns its results, so End counts it as an error. It never reaches the
// host, which sees the panic.
var errPanicked = errors.New("panicked")

func (d *database) Initialize(ctx context.Context, req dbplugin.InitializeRequest) (resp dbplugin.InitializeResponse, err error) {
	call := d.r.BeginDB(metrics.DBInitialize)
	defer func() { call.End(err) }()
	err = errPanicked
	resp, err = d.next.Initialize(ctx, req)
	if err == nil && !d.initialized.Swap(true) {
		d.r.ConnOpened()
	}
	return resp, err
}

func (d *database) NewUser(ctx context.Context, req dbplugin.NewUserRequest) (resp dbplugin.NewUserResponse, err error) {
	call := d.r.BeginDB(metrics.DBNewUser)
	defer func() { call.End(err) }()
	err = errPanicked
	return d.next.NewUser(ctx, req)
}

func (d *database) UpdateUser(ctx context.Context, req dbplugin.UpdateUserRequest) (resp dbplugin.UpdateUserResponse, err error) {
	call := d.r.BeginDB(metrics.DBUpdateUser)
	defer func() { call.End(err) }()
	err = errPanicked
	return d.next.UpdateUser(ctx, req)
}

func (d *database) DeleteUser(ctx context.Context, req dbplugin.DeleteUserRequest) (resp dbplugin.DeleteUserResponse, err error) {
	call := d.r.BeginDB(metrics.DBDeleteUser)
	defer func() { call.End(err) }()
	err = errPanicked
	return d.next.DeleteUser(ctx, req)
}

func (d *database) Type() (string, error) { return d.next.Type() }

func (d *database) Close() error {
	if d.initialized.Swap(false) {
		d.r.ConnClosed()
	}
	return d.next.Close()
}
