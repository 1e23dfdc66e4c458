package servetest

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
	"errors"
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

// WithLegacyTLS plays the host of the legacy TLS path, which Vault takes
// for plugins that offer only protocols up to 4 and which Vaults before
// 1.12 took for all: AutoMTLS off, a server certificate wrapped in a
// single-use token, and VAULT_UNWRAP_TOKEN set to an ES512 JWT whose addr
// claim points at a loopback HTTPS endpoint answering sys/wrapping/unwrap,
// as Vault's API does. The plugin is given -ca-cert with that endpoint's CA,
// as an operator would in -args. The host speaks protocol 4, so the plugin
// serves one mount per process. A modern Vault never takes this path for a
// plugin that offers protocol 5, so this is the way to test a plugin's TLS
// provider at all. It is for backend plugins only: database plugins use
// AutoMTLS only.
func WithLegacyTLS() Option {
	return optionFunc(func(c *config) error {
		if c.database {
			return errors.New("WithLegacyTLS does not apply to database plugins: they use AutoMTLS only, so Vault never starts one on the wrap-token TLS path")
		}
		c.legacyTLS = true
		return nil
	})
}

// legacyHost is Vault's side of the legacy TLS path.
type legacyHost struct {
	api       *httptest.Server
	token     string
	serverKey string // the plugin's private key as wrapped: base64 DER
	clientTLS *tls.Config
	caFile    string
}

// newLegacyHost generates the plugin's server certificate as
// pluginutil.generateCert does, wraps it behind a single-use token, and
// serves the unwrap endpoint. dir receives the API's CA file.
func newLegacyHost(dir string) (*legacyHost, error) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the plugin's key: %w", err)
	}
	host, err := newID()
	if err != nil {
		return nil, err
	}
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
	h := &legacyHost{clientTLS: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   leaf.Subject.CommonName,
		MinVersion:   tls.VersionTLS12,
	}}

	h.serverKey = base64.StdEncoding.EncodeToString(rawKey)
	wrapped := map[string]any{"data": map[string]any{
		"ServerCert": base64.StdEncoding.EncodeToString(der),
		"ServerKey":  h.serverKey,
	}}
	var once sync.Once
	h.api = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/sys/wrapping/unwrap" || r.Header.Get("X-Vault-Token") != h.token {
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
	h.token, err = jwt.Signed(signer).Claims(map[string]any{
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

	h.caFile = filepath.Join(dir, "vault-api-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.api.Certificate().Raw})
	if err := os.WriteFile(h.caFile, ca, 0o600); err != nil {
		h.api.Close()
		return nil, fmt.Errorf("writing the API's CA: %w", err)
	}
	return h, nil
}

func (h *legacyHost) close() { h.api.Close() }
