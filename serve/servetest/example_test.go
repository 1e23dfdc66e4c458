package servetest_test

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// pluginBinary is the path of a plugin binary served by serve.Run: the
// one the serve tests drive, whose paths are kv/<key> (read and write) and
// info. A plugin's own tests get theirs from servetest.Build; an Example
// has no *testing.T, so these use Compile, which returns the error.
var pluginBinary = sync.OnceValue(func() string { return compile(plugin) })

// databaseBinary is the database plugin the serve tests drive, whose
// Type is "echo".
var databaseBinary = sync.OnceValue(func() string { return compile(database) })

// compile is servetest.Compile for an Example's setup, which has nowhere
// to report an error but a panic.
func compile(pkg string) string {
	bin, err := servetest.Compile(context.Background(), pkg)
	if err != nil {
		panic(err)
	}
	return bin
}

// Start a plugin binary as Vault does, mount it, and make requests through
// the gRPC boundary, as Vault's router would. Code without a testing.TB
// uses New and NewMount, which return errors; a test uses Start and Mount.
func ExampleNew() {
	ctx := context.Background()
	p, err := servetest.New(ctx, pluginBinary())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	m, err := p.NewMount(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := m.Write(ctx, "kv/greeting", map[string]any{"value": "hello"}); err != nil {
		fmt.Println(err)
		return
	}
	resp, err := m.Read(ctx, "kv/greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("read:", resp.Data["value"])

	// The mount's storage is what Vault would hold for it.
	keys, _ := m.Storage.List(ctx, "")
	fmt.Println("stored keys:", keys)
	// Output:
	// read: hello
	// stored keys: [greeting]
}

// A request fails as Vault's HTTP API would answer it: a
// *servetest.ResponseError holds the status and the messages of the
// answer's "errors".
func ExampleResponseError() {
	ctx := context.Background()
	p, err := servetest.New(ctx, pluginBinary())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	m, err := p.NewMount(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, path := range []string{"kv/never-written", "no/such/path"} {
		_, err := m.Read(ctx, path)
		var re *servetest.ResponseError
		if errors.As(err, &re) {
			fmt.Println(path, re.StatusCode, re.Errors)
		}
	}
	_, err = m.Write(ctx, "kv/", nil)
	fmt.Println(err)
	// Output:
	// kv/never-written 404 []
	// no/such/path 404 [1 error occurred:
	// 	* unsupported path
	//
	// ]
	// Vault would answer 400 Bad Request: cannot write to a path ending in '/'
}

// Two mounts share one multiplexed process, as in Vault, each with its own
// storage.
func ExamplePlugin_NewMount() {
	ctx := context.Background()
	p, err := servetest.New(ctx, pluginBinary())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	a, errA := p.NewMount(ctx, nil)
	b, errB := p.NewMount(ctx, nil)
	if errA != nil || errB != nil {
		fmt.Println(errA, errB)
		return
	}
	pidOf := func(m *servetest.Mount) any {
		resp, err := m.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "info"})
		if err != nil {
			return err
		}
		return resp.Data["pid"]
	}
	fmt.Println("one process:", pidOf(a) == pidOf(b) && pidOf(a) == fmt.Sprint(p.PID()))
	fmt.Println("different ids:", a.ID != b.ID)
	// Output:
	// one process: true
	// different ids: true
}

// A secret the backend issues gets a lease, as Vault's expiration manager
// gives it one: an ID of the request's path, the mount's TTLs, and a life
// the test drives with Renew, Revoke and the host's clock. The plugin's
// lease/NAME path issues a secret whose handlers record what they saw
// under lease-log/NAME.
func ExampleMount_Renew() {
	ctx := context.Background()
	p, err := servetest.New(ctx, pluginBinary(), servetest.WithPluginName("secrets"), servetest.WithLeaseTTLs(time.Hour, 2*time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	m, err := p.NewMount(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	// The backend sets no TTL: the lease gets the mount's default.
	resp, err := m.Write(ctx, "lease/web", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	id := resp.Secret.LeaseID
	fmt.Println("issued:", path.Dir(id), resp.Secret.TTL)

	// A renewal past the mount's max TTL is capped, with Vault's warning.
	renewed, err := m.Renew(ctx, id, 3*time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("renewed:", renewed.Secret.TTL, renewed.Warnings)

	// Once the host's clock passes the lease's end, the backend's revoke
	// handler has been called, and the lease is gone.
	if err := p.Advance(ctx, 2*time.Hour); err != nil {
		fmt.Println(err)
		return
	}
	log, err := m.Read(ctx, "lease-log/web")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("revocations:", log.Data["revoke_count"])
	_, err = m.Renew(ctx, id, 0)
	fmt.Println(err)
	// Output:
	// issued: secrets/lease/web 1h0m0s
	// renewed: 2h0m0s [TTL of "3h" exceeded the effective max_ttl of "2h"; TTL value is capped accordingly]
	// revocations: 1
	// Vault would answer 400 Bad Request: lease not found
}

// A database plugin hands out connections, as Vault's database secrets
// engine makes one per `vault write database/config/NAME`.
func ExampleNewDatabase() {
	ctx := context.Background()
	d, err := servetest.NewDatabase(ctx, databaseBinary())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	db, err := d.NewConnection(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{}}); err != nil {
		fmt.Println(err)
		return
	}
	typ, err := db.Type()
	fmt.Println("type:", typ, err)
	// Output:
	// type: echo <nil>
}

// WithLegacyTLS plays the host of the wrap-token TLS path: servetest
// answers the plugin's sys/wrapping/unwrap call with the server certificate,
// so the plugin's TLS provider runs for real.
func ExampleWithLegacyTLS() {
	ctx := context.Background()
	p, err := servetest.New(ctx, pluginBinary(), servetest.WithLegacyTLS())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	m, err := p.NewMount(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = m.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "info"})
	fmt.Println("served over the unwrapped certificate:", err == nil)
	// Output:
	// served over the unwrapped certificate: true
}

// Logs returns the plugin's stderr, parsed: the JSON records Vault would
// re-log under the plugin's name. Here the plugin warns that an operator
// turned certificate verification off on the legacy TLS path.
func ExampleProcess_Logs() {
	ctx := context.Background()
	p, err := servetest.New(ctx, pluginBinary(), servetest.WithLegacyTLS(), servetest.WithArgs("-tls-skip-verify"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// After Close every line the plugin wrote has been read.
	_ = p.Close()

	for _, r := range p.Logs() {
		if r.Level == "warn" {
			fmt.Println(r.Level+":", r.Message)
		}
	}
	// Output:
	// warn: -tls-skip-verify is set: Vault's API certificate is not verified on the legacy TLS path
}
