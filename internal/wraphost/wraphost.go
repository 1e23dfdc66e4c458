// Package wraphost plays Vault's side of the legacy TLS path, which Vault
// takes for plugins that offer only protocols up to 4 and, since 1.12,
// after a plugin's AutoMTLS start failed: AutoMTLS off, the plugin's
// server certificate wrapped behind a single-use token, and
// VAULT_UNWRAP_TOKEN set to an ES512 JWT whose addr claim points at an
// HTTPS endpoint answering sys/wrapping/unwrap, as Vault's API does
// (pluginutil's run config, sdk v0.20.0). servetest's WithLegacyTLS and
// vaultplugin check both start plugins this way, so it lives here once.
package wraphost

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Host is Vault's side of the legacy TLS path for one plugin start: the
// wrapping token to put in VAULT_UNWRAP_TOKEN, the unwrap endpoint it
// points at, and the TLS configuration with which the host then talks to
// the plugin.
type Host struct {
	// Token is the wrapping token: an ES512 JWT whose addr claim is the
	// unwrap endpoint's address. It answers once, as Vault's does.
	Token string
	// ServerKey is the plugin's private key as the endpoint hands it out:
	// base64 of its DER form. Like Token it must never reach a log.
	ServerKey string
	// ClientTLS is the host's side of the plugin's gRPC connection: its
	// certificate and the plugin's as the only root.
	ClientTLS *tls.Config
	// CAFile is the endpoint's CA certificate, PEM, for the plugin's
	// -ca-cert: the endpoint speaks HTTPS with a certificate of its own.
	CAFile string

	api *httptest.Server
}

// Start generates the plugin's server certificate as pluginutil's
// generateCert does, wraps it behind a single-use token, and serves the
// unwrap endpoint on a loopback port until Close. dir receives the
// endpoint's CA file.
func Start(dir string) (*Host, error) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the plugin's key: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("generating the plugin's host name: %w", err)
	}
	host := hex.EncodeToString(id)
	tmpl := &x509.Certificate{
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-30 * time.Second),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating the plugin's certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	rawKey, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	h := &Host{ClientTLS: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   leaf.Subject.CommonName,
		MinVersion:   tls.VersionTLS12,
	}}

	h.ServerKey = base64.StdEncoding.EncodeToString(rawKey)
	wrapped := map[string]any{"data": map[string]any{
		"ServerCert": base64.StdEncoding.EncodeToString(der),
		"ServerKey":  h.ServerKey,
	}}
	var once sync.Once
	h.api = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/sys/wrapping/unwrap" || r.Header.Get("X-Vault-Token") != h.Token {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":["wrapping token is not valid or does not exist"]}`))
			return
		}
		// A wrapping token answers once, as Vault's cubbyhole does.
		served := false
		once.Do(func() { served = true })
		if !served {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":["wrapping token is not valid or does not exist"]}`))
			return
		}
		_ = json.NewEncoder(w).Encode(wrapped)
	}))

	// The token is an ES512 JWT whose addr claim is the API's address,
	// which the plugin reads without verifying, as the SDK does.
	signKey, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		h.api.Close()
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES512, Key: signKey}, nil)
	if err != nil {
		h.api.Close()
		return nil, err
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	h.Token, err = jwt.Signed(signer).Claims(map[string]any{
		// The listener is bound before the server starts, so the address
		// is known and the token is set before any handler can read it.
		"addr": "https://" + h.api.Listener.Addr().String(),
		"jti":  hex.EncodeToString(jti),
		"exp":  time.Now().Add(time.Minute).Unix(),
	}).Serialize()
	if err != nil {
		h.api.Close()
		return nil, err
	}
	h.api.StartTLS()

	h.CAFile = filepath.Join(dir, "vault-api-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.api.Certificate().Raw})
	if err := os.WriteFile(h.CAFile, ca, 0o600); err != nil {
		h.api.Close()
		return nil, fmt.Errorf("writing the API's CA: %w", err)
	}
	return h, nil
}

// Close stops the unwrap endpoint. The CA file stays: dir is the caller's.
func (h *Host) Close() { h.api.Close() }
