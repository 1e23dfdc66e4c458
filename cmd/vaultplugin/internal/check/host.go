package check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// kind is a kind of plugin as Vault starts it: the handshake cookie and
// the protocol versions the host offers.
type kind struct {
	name   string // "backend" (secrets engines, auth methods) or "database"
	cookie goplugin.HandshakeConfig
	// offer is PLUGIN_PROTOCOL_VERSIONS as Vault 1.21 sets it.
	offer string
	// legacyOffer is what Vault offers on the legacy TLS path, its
	// fallback when the AutoMTLS start fails: sdk/plugin's
	// NewPluginClient's plugin set, protocols 3 and 4. "" for a kind that
	// has no such path (databases use AutoMTLS only).
	legacyOffer string
	// probes are the versions the protocol check offers one at a time.
	probes []int
}

// kinds returns the kinds in the order the cookie probe tries them.
func kinds() []kind {
	return []kind{
		{name: "backend", cookie: sdkplugin.HandshakeConfig, offer: "5", legacyOffer: "3,4", probes: []int{3, 4, 5}},
		{name: "database", cookie: dbplugin.HandshakeConfig, offer: "5,6", probes: []int{5, 6}},
	}
}

// host plays Vault for one run of the checks: the plugin and how the
// operator registered it, a client certificate for AutoMTLS, and a
// directory of its own for the plugins' sockets.
type host struct {
	Config
	// legacy is set when the plugin serves only over the legacy TLS path
	// (a wrapping token, protocol 4), to which Vault falls back when its
	// AutoMTLS start fails: every start then takes that path, as every
	// start of the plugin under Vault does. Run decides it before the
	// checks that read it start.
	legacy bool
	// cert is PEM, for PLUGIN_CLIENT_CERT on the raw starts: with it the
	// plugin serves AutoMTLS as under Vault. No check connects, so the
	// key is not kept.
	cert string
	// tmp is the plugins' TMPDIR, where go-plugin puts its Unix socket: a
	// plugin the checks kill cannot remove its socket, so the directory
	// goes when the run ends.
	tmp string
}

func newHost(c Config) (*host, error) {
	cert, err := clientCert()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "vpcheck-")
	if err != nil {
		return nil, fmt.Errorf("creating a directory for the plugins' sockets: %w", err)
	}
	return &host{Config: c, cert: cert, tmp: tmp}, nil
}

func (h *host) close() { os.RemoveAll(h.tmp) }

// baseEnv is this process's environment without either handshake cookie,
// so that a start sets exactly the one it means.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == sdkplugin.HandshakeConfig.MagicCookieKey || k == dbplugin.HandshakeConfig.MagicCookieKey {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// env is the environment Vault 1.21 gives a plugin of kind k (go-plugin's
// client and pluginutil's run config), offering protocols, with AutoMTLS
// (on the legacy path without: the caller adds the wrapping token); then
// the checks' TMPDIR and extra; then the operator's -env entries, which
// win.
func (h *host) env(k kind, protocols string, extra ...string) []string {
	env := append(baseEnv(),
		k.cookie.MagicCookieKey+"="+k.cookie.MagicCookieValue,
		"PLUGIN_MIN_PORT=10000",
		"PLUGIN_MAX_PORT=25000",
		"PLUGIN_PROTOCOL_VERSIONS="+protocols,
		pluginutil.PluginVaultVersionEnv+"="+servetest.DefaultVaultVersion,
		pluginutil.PluginMetadataModeEnv+"=false",
		pluginutil.PluginAutoMTLSEnv+"="+strconv.FormatBool(!h.legacy),
		"TMPDIR="+h.tmp,
	)
	if !h.legacy {
		// go-plugin's client sets it only with AutoMTLS.
		env = append(env, "PLUGIN_CLIENT_CERT="+h.cert)
	}
	env = append(env, extra...)
	return append(env, h.Env...)
}

// offer is what Vault offers a plugin of kind k at a start on this host's
// path: PLUGIN_PROTOCOL_VERSIONS.
func (h *host) offer(k kind) string {
	if h.legacy {
		return k.legacyOffer
	}
	return k.offer
}

// onLegacyPath returns a copy of the host that starts plugins as Vault
// does on its fallback, the legacy TLS path.
func (h *host) onLegacyPath() *host {
	l := *h
	l.legacy = true
	return &l
}

// options are the servetest options every start through servetest takes:
// the checks' TMPDIR, then the operator's -args and -env.
func (h *host) options(extra ...servetest.Option) []servetest.Option {
	opts := []servetest.Option{servetest.WithEnv("TMPDIR=" + h.tmp)}
	if len(h.Args) > 0 {
		opts = append(opts, servetest.WithArgs(h.Args...))
	}
	if len(h.Env) > 0 {
		opts = append(opts, servetest.WithEnv(h.Env...))
	}
	return append(opts, extra...)
}

// clientCert makes a self-signed client certificate, as go-plugin's
// client does for AutoMTLS, and returns it as PEM.
func clientCert() (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating the AutoMTLS client key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", fmt.Errorf("generating a certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"vaultplugin check"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-30 * time.Second),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", fmt.Errorf("creating the AutoMTLS client certificate: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}
