package servetest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

const plugin = "../internal/testplugin"

func TestInvalidOption(t *testing.T) {
	_, err := servetest.New(context.Background(), "/nonexistent", servetest.WithEnv("NOEQUALS"))
	if err == nil || !strings.Contains(err.Error(), `WithEnv("NOEQUALS")`) {
		t.Fatalf("err = %v", err)
	}
}

// A plugin that fails to start gives the error Vault's API would show.
func TestStartupFailureShowsTheCauseLine(t *testing.T) {
	bin := servetest.Build(t, plugin)
	_, err := servetest.New(context.Background(), bin, servetest.WithArgs("-no-such-flag"))
	if err == nil {
		t.Fatal("started with an unknown flag")
	}
	for _, want := range []string{
		"Unrecognized remote plugin message: testplugin: flag provided but not defined: -no-such-flag",
		`"@level":"error"`, // the plugin's stderr record, for the test's reader
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestKill(t *testing.T) {
	bin := servetest.Build(t, plugin)
	p := servetest.Start(t, bin, servetest.WithVaultVersion("1.20.1"))
	m, err := p.Mount(context.Background(), map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	_, err = m.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "info"})
	if err == nil {
		t.Fatal("a request to a killed plugin succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Error("Exited() = false after Kill and Close")
	}
}

// Start a plugin binary as Vault does and mount it twice.
func ExampleStart() {
	var t *testing.T // a test's t
	bin := servetest.Build(t, "./cmd/my-plugin")
	p := servetest.Start(t, bin, servetest.WithEnv("VAULTPLUGIN_LOG_LEVEL=debug"))
	a, _ := p.Mount(context.Background(), nil)
	b, _ := p.Mount(context.Background(), nil)
	_, _ = a, b // two mounts, one process: p.PID()
}

func TestMetadataMode(t *testing.T) {
	bin := servetest.Build(t, plugin)
	p := servetest.Start(t, bin, servetest.WithMetadataMode(), servetest.WithEnv("TESTPLUGIN_MODE=version"))
	m, err := p.Mount(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := m.Backend.(logical.PluginVersioner).PluginVersion().Version; v != "v1.2.3" {
		t.Errorf("version in metadata mode = %q", v)
	}
	_, err = m.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "info"})
	if err == nil || !strings.Contains(err.Error(), "metadata mode") {
		t.Errorf("a request in metadata mode: %v", err)
	}
}

func TestWithoutHostMultiplexing(t *testing.T) {
	bin := servetest.Build(t, plugin)
	p := servetest.Start(t, bin, servetest.WithoutHostMultiplexing())
	m, err := p.Mount(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "info"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Mount(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "does not multiplex") {
		t.Errorf("second mount: %v", err)
	}
}
