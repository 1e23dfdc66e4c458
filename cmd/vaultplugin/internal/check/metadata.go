package check

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// metadataRun is what starting the plugin in metadata mode showed.
type metadataRun struct {
	startErr error  // the start failed
	instErr  error  // the start worked, the mount (connection) did not
	typ      string // what Type answered
}

// runMetadata starts the plugin in metadata mode:
// VAULT_PLUGIN_METADATA_MODE=true and no TLS at all. A backend's Setup
// and Type, a database's Type, must answer. Vault 1.21 starts a backend
// so when its AutoMTLS start failed, to learn its type and special paths
// before the legacy TLS path serves it (builtin/plugin's Backend, offering
// protocols 3 and 4, as here on that path); Vaults before 1.12 did at
// every mount; a database's version is read so at registration.
func (h *host) runMetadata(ctx context.Context, k kind) metadataRun {
	ctx, cancel := context.WithTimeout(ctx, HandshakeBound+RequestBound)
	defer cancel()
	opts := h.options(servetest.WithMetadataMode())
	if h.legacy {
		opts = append(opts, servetest.WithoutHostMultiplexing())
	}
	if k.name == "database" {
		d, err := servetest.NewDatabase(ctx, h.Binary, opts...)
		if err != nil {
			return metadataRun{startErr: err}
		}
		defer d.Close()
		conn, err := d.NewConnection(ctx)
		if err != nil {
			return metadataRun{instErr: err}
		}
		t, err := conn.Type()
		if err != nil {
			return metadataRun{instErr: fmt.Errorf("asking its Type: %w", err)}
		}
		return metadataRun{typ: fmt.Sprintf("%q", t)}
	}
	p, err := servetest.New(ctx, h.Binary, opts...)
	if err != nil {
		return metadataRun{startErr: err}
	}
	defer p.Close()
	m, err := p.NewMount(ctx, nil)
	if err != nil {
		return metadataRun{instErr: err}
	}
	if t := m.Type(); t != logical.TypeUnknown {
		return metadataRun{typ: t.String()}
	}
	return metadataRun{instErr: fmt.Errorf("its Type answered %s", logical.TypeUnknown)}
}

// metadataResult is the metadata check. A mount that fails in metadata
// mode as it failed under AutoMTLS is the type check's failure, not this
// one's. Only on the legacy path does Vault need metadata mode to serve
// the plugin: there a failure fails; elsewhere it costs what Vault learns
// from it (a database's version at registration, the fallback should
// AutoMTLS ever fail), and warns.
func (s *session) metadataResult(run metadataRun) Result {
	status := Warn
	if s.legacy {
		status = Fail
	}
	switch {
	case run.startErr != nil:
		return Result{ID: idMetadata, Status: status, Detail: "does not start in metadata mode: " + newStartFailure(run.startErr).why(),
			Fix: "serve without TLS when VAULT_PLUGIN_METADATA_MODE=true: a bare SDK main passes api.VaultPluginTLSProvider as TLSProviderFunc " +
				"(it returns nil then) or none at all; serve.Run handles it"}
	case run.instErr != nil && s.instErr != nil:
		return Result{ID: idMetadata, Status: Skip, Detail: "starts in metadata mode; its mount fails as under AutoMTLS (see type)"}
	case run.instErr != nil:
		return Result{ID: idMetadata, Status: status, Detail: "starts in metadata mode, but Setup fails there: " + firstLine(run.instErr.Error()),
			Fix: "let the factory and Setup work without TLS and with an empty configuration (Vault starts it so to read its type and version), " +
				"whether main is the bare SDK's or serve.Run"}
	}
	return Result{ID: idMetadata, Status: Pass, Detail: "starts in metadata mode (no TLS) and answers Type: " + run.typ}
}
