package servetest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

const (
	plugin   = "../internal/testplugin"
	database = "../internal/testdb"
)

func TestInvalidOption(t *testing.T) {
	_, err := servetest.New(context.Background(), "/nonexistent", servetest.WithEnv("NOEQUALS"))
	if err == nil || !strings.Contains(err.Error(), `WithEnv("NOEQUALS")`) {
		t.Fatalf("err = %v", err)
	}
}

// Every invalid option is reported at once, before anything starts.
func TestInvalidOptionsAggregated(t *testing.T) {
	_, err := servetest.New(context.Background(), "/nonexistent",
		servetest.WithEnv("NOEQUALS"),
		servetest.WithArgs("-fine"),
		servetest.WithVaultVersion(""),
		servetest.WithStderr(nil),
		servetest.WithMetadataMode(),
		servetest.WithLegacyTLS(),
	)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"servetest: 4 invalid options:",
		"\n\t* " + `WithEnv("NOEQUALS"): want KEY=VALUE`,
		"\n\t* WithVaultVersion: empty version",
		"\n\t* WithStderr(nil): want a writer",
		"\n\t* WithMetadataMode and WithLegacyTLS exclude each other",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("the binary was looked at before the options were checked:\n%v", err)
	}
}

// A nil Option is an error naming its place, not a panic.
func TestNilOption(t *testing.T) {
	_, err := servetest.New(context.Background(), "/nonexistent", servetest.WithArgs("-x"), nil)
	if err == nil || err.Error() != "servetest: option 2 of 2 is nil" {
		t.Fatalf("err = %v", err)
	}
	_, err = servetest.NewDatabase(context.Background(), "/nonexistent", nil)
	if err == nil || err.Error() != "servetest: option 1 of 1 is nil" {
		t.Fatalf("NewDatabase: err = %v", err)
	}
}

// Options that play a host Vault never is for a database plugin are
// refused, each with its reason.
func TestDatabaseRefusesBackendOptions(t *testing.T) {
	for _, tc := range []struct {
		opt  servetest.Option
		want string
	}{
		{servetest.WithLegacyTLS(), "servetest: WithLegacyTLS does not apply to database plugins: they use AutoMTLS only, so Vault never starts one on the wrap-token TLS path"},
		{servetest.WithoutHostMultiplexing(), "servetest: WithoutHostMultiplexing does not apply to database plugins: Vault always offers them protocols 5 and 6, and whether to multiplex is the plugin's choice"},
	} {
		_, err := servetest.NewDatabase(context.Background(), "/nonexistent", tc.opt)
		if err == nil || err.Error() != tc.want {
			t.Errorf("err = %v\nwant %s", err, tc.want)
		}
	}
	_, err := servetest.NewDatabase(context.Background(), "/nonexistent", servetest.WithLegacyTLS(), servetest.WithoutHostMultiplexing())
	if err == nil || !strings.Contains(err.Error(), "2 invalid options") {
		t.Errorf("both: %v", err)
	}
}

// A plugin that fails to start gives the error Vault's API would show,
// the plugin's own cause first, and the plugin's last stderr lines: New
// returns only once they are read.
func TestStartupFailureShowsTheCauseLine(t *testing.T) {
	bin := servetest.Build(t, plugin)
	_, err := servetest.New(context.Background(), bin, servetest.WithArgs("-no-such-flag"))
	if err == nil {
		t.Fatal("started with an unknown flag")
	}
	msg := err.Error()
	const cause = "testplugin: flag provided but not defined: -no-such-flag"
	if first, _, _ := strings.Cut(msg, "\n"); !strings.HasPrefix(first, "servetest: starting "+bin+": "+cause) {
		t.Errorf("first line %q, want the plugin's cause", first)
	}
	// In this order: the cause, go-plugin's line, the plugin's stderr
	// record (for the test's reader).
	last := -1
	for _, want := range []string{
		cause,
		"\ngo-plugin: Unrecognized remote plugin message: " + cause,
		"\nplugin stderr:\n",
		`"@level":"error"`,
	} {
		i := strings.Index(msg, want)
		if i < 0 {
			t.Errorf("error lacks %q:\n%v", want, msg)
			continue
		}
		if i <= last {
			t.Errorf("%q is out of order:\n%v", want, msg)
		}
		last = i
	}
	if strings.Contains(msg, "This usually means") {
		t.Errorf("go-plugin's generic explanation is still there:\n%v", msg)
	}
}

func TestKill(t *testing.T) {
	bin := servetest.Build(t, plugin)
	p := servetest.Start(t, bin)
	m := p.Mount(t, map[string]string{"k": "v"})
	pid := p.PID()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p.Host().Real {
		// The raw call fails; a Mount's request methods would start
		// the binary again (TestKillThenRequest).
		if _, err := m.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "info"}); err == nil {
			t.Fatal("a request to a killed plugin succeeded")
		}
	} else {
		// The request that met the dead process fails (500); Vault
		// and OpenBao start the plugin again in the background, and a
		// later request is served by the new process.
		_, err := m.Read(context.Background(), "info")
		if err == nil {
			t.Fatal("a request to a killed plugin succeeded")
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err = m.Read(context.Background(), "info"); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("the requests after the kill: %v, want one served by a new process", err)
		}
		if p.PID() == pid || p.PID() == 0 {
			t.Errorf("PID %d after the kill, want a new process's (the killed one was %d)", p.PID(), pid)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Error("Exited() = false after Kill and Close")
	}
	if _, err := p.NewMount(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "the plugin is closed") {
		t.Errorf("NewMount after Close: %v", err)
	}
}

// Start a plugin binary as Vault does and mount it twice.
func ExampleStart() {
	var t *testing.T // a test's t
	bin := servetest.Build(t, "./cmd/my-plugin")
	p := servetest.Start(t, bin, servetest.WithEnv("VAULTPLUGIN_LOG_LEVEL=debug"))
	a := p.Mount(t, nil)
	b := p.Mount(t, nil)
	_, _ = a, b // two mounts, one process: p.PID()
}

func TestMetadataMode(t *testing.T) {
	bin := servetest.Build(t, plugin)
	p := servetest.Start(t, bin, servetest.WithMetadataMode(), servetest.WithEnv("TESTPLUGIN_MODE=version"))
	m := p.Mount(t, nil)
	if v := m.Backend.(logical.PluginVersioner).PluginVersion().Version; v != "v1.2.3" {
		t.Errorf("version in metadata mode = %q", v)
	}
	_, err := m.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "info"})
	if err == nil || !strings.Contains(err.Error(), "metadata mode") {
		t.Errorf("a request in metadata mode: %v", err)
	}
}

// fatalTB stands in for a test's t: it records a Fatal instead of failing
// the test, and ends the goroutine as testing.T's Fatal does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalOf runs f with a fatalTB, in a goroutine of its own as a test
// runs, and returns what f passed to Fatal and whether f returned.
func fatalOf(t *testing.T, f func(testing.TB)) (msg string, returned bool) {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
		returned = true
	}()
	<-done
	return tb.msg, returned
}

func TestWithoutHostMultiplexing(t *testing.T) {
	bin := servetest.Build(t, plugin)
	p := servetest.Start(t, bin, servetest.WithoutHostMultiplexing())
	m := p.Mount(t, nil)
	if _, err := m.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "info"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewMount(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "does not multiplex") {
		t.Errorf("second NewMount: %v", err)
	}
	// Mount fails its test with the same error, and does not return.
	msg, returned := fatalOf(t, func(tb testing.TB) { p.Mount(tb, nil) })
	if returned {
		t.Error("Mount returned after failing its test")
	}
	const want = "servetest: the plugin does not multiplex: Vault starts one process per mount, so start another Plugin"
	if msg != want {
		t.Errorf("Mount failed its test with %q, want %q", msg, want)
	}
}

// WithVaultVersion reaches the plugin twice, as Vault's version does: in
// VAULT_VERSION and from the mount's system view.
func TestWithVaultVersion(t *testing.T) {
	bin := servetest.Build(t, plugin)
	for _, tc := range []struct {
		opts      []servetest.Option
		want, env string // "" for the host's own version
	}{
		{nil, "", ""},
		{[]servetest.Option{servetest.WithVaultVersion("1.19.5")}, "1.19.5", "1.19.5"},
		// The system view gives the release alone, as Vault's does.
		{[]servetest.Option{servetest.WithVaultVersion("1.20.0-rc1+ent")}, "1.20.0", "1.20.0-rc1+ent"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			p := servetest.Start(t, bin, tc.opts...)
			if tc.want == "" {
				// servetest.DefaultVaultVersion in the emulation.
				tc.want, tc.env = p.Host().Version, p.Host().Version
			}
			resp, err := p.Mount(t, nil).Read(context.Background(), "vaultversion")
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Data["version"]; got != tc.want {
				t.Errorf("system view's VaultVersion = %v, want %s", got, tc.want)
			}
			if got := resp.Data["env"]; got != tc.env {
				t.Errorf("VAULT_VERSION = %v, want %s", got, tc.env)
			}
		})
	}
}

// WithArgs appends: each call adds its arguments after those before (and
// after the -ca-cert WithLegacyTLS adds).
func TestWithArgsAppends(t *testing.T) {
	bin := servetest.Build(t, plugin)
	p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_MODE=flags"), servetest.WithLegacyTLS(),
		servetest.WithArgs("-greeting=one"), servetest.WithArgs("-tls-skip-verify"), servetest.WithArgs("-greeting=two"))
	m := p.Mount(t, nil)
	resp, err := m.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "info"})
	if err != nil {
		t.Fatal(err)
	}
	// The last -greeting wins only if the calls kept their order.
	if got := resp.Data["greeting"]; got != "two" {
		t.Errorf("greeting = %v, want two", got)
	}
	// The middle call's flag is there too: the plugin warns about it on
	// the legacy TLS path.
	var warned bool
	for _, r := range p.Logs() {
		warned = warned || (r.Level == "warn" && strings.HasPrefix(r.Message, "-tls-skip-verify is set"))
	}
	if !warned {
		t.Errorf("no -tls-skip-verify warning; logs: %v", p.Logs())
	}
}

// A mount is cleaned up once, as Vault unmounts it once: by the test
// (Mount.Cleanup), or else by Close or the test's end.
func TestMountCleanupOnce(t *testing.T) {
	// Measured on Vault 1.21.0: 4 Cleanups for 2 mounts, as a real host
	// also sets up (and cleans up) backend instances of its own.
	servetest.SkipOnRealHost(t, "one Cleanup per mount")
	bin := servetest.Build(t, plugin)
	marker := filepath.Join(t.TempDir(), "cleanup")
	p, err := servetest.New(context.Background(), bin, servetest.WithEnv("TESTPLUGIN_CLEANUP_FILE="+marker))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, err := p.NewMount(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Cleanup(context.Background())
	a.Cleanup(context.Background())
	if _, err := p.NewMount(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	b, _ := os.ReadFile(marker)
	if got := strings.Count(string(b), "cleanup"); got != 2 {
		t.Errorf("Cleanup ran %d times for two mounts, want 2", got)
	}
}

func TestDatabase(t *testing.T) {
	servetest.SkipOnRealHost(t, "a Connection's raw dbplugin calls (Type, DeleteUser)")
	bin := servetest.Build(t, database)
	d := servetest.StartDatabase(t, bin)
	ctx := context.Background()
	a, b := d.Connect(t), d.Connect(t)
	for _, db := range []dbplugin.Database{a, b} {
		if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{}}); err != nil {
			t.Fatal(err)
		}
		if typ, err := db.Type(); err != nil || typ != "echo" {
			t.Errorf("Type() = %q, %v", typ, err)
		}
	}
	// A connection closes once, whoever asks first; the test's end and
	// Close then leave it alone.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: "someone"}); err != nil {
		t.Errorf("the other connection after Close: %v", err)
	}
}
