package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// An identity provider as small as a test needs: keys that sign JWTs with
// the standard library alone, and a JWKS endpoint that publishes some of
// them. Nothing here comes from the plugin's dependencies, so the tests
// check its validation against an independent implementation.

// signer signs JWTs with one key, as an identity provider does.
type signer struct {
	kid string
	alg string // "RS256" or "ES256"
	key crypto.Signer
}

func newRSA(t *testing.T, kid string) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: "RS256", key: k}
}

func newEC(t *testing.T, kid string) *signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: "ES256", key: k}
}

var b64 = base64.RawURLEncoding

// jwk is the public key as a JSON Web Key (RFC 7517, 7518 section 6).
func (s *signer) jwk() map[string]any {
	k := map[string]any{"kid": s.kid, "alg": s.alg, "use": "sig"}
	switch pub := s.key.Public().(type) {
	case *rsa.PublicKey:
		k["kty"] = "RSA"
		k["n"] = b64.EncodeToString(pub.N.Bytes())
		k["e"] = b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		ecdh, err := pub.ECDH()
		if err != nil {
			panic(err) // a P-256 key made by newEC always converts
		}
		// The uncompressed point: 0x04, then X and Y of 32 bytes each.
		b := ecdh.Bytes()
		k["kty"] = "EC"
		k["crv"] = "P-256"
		k["x"] = b64.EncodeToString(b[1:33])
		k["y"] = b64.EncodeToString(b[33:])
	}
	return k
}

// sign returns a JWS compact serialization of claims (RFC 7515), signed
// with RS256 (PKCS #1 v1.5) or ES256 (R and S, 32 bytes each, RFC 7518
// section 3.4).
func (s *signer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	header, _ := json.Marshal(map[string]any{"alg": s.alg, "typ": "JWT", "kid": s.kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	case *ecdsa.PrivateKey:
		var r, ss *big.Int
		if r, ss, err = ecdsa.Sign(rand.Reader, k, digest[:]); err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			ss.FillBytes(sig[32:])
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// jwks is a JWKS endpoint on 127.0.0.1 (httptest's loopback listener),
// which the plugin process fetches the keys from, counting the fetches.
type jwks struct {
	*httptest.Server
	fetches atomic.Int64
}

// serveJWKS publishes the public keys of signers at URL/keys until the test
// ends.
func serveJWKS(t *testing.T, signers ...*signer) *jwks {
	t.Helper()
	var keys []map[string]any
	for _, s := range signers {
		keys = append(keys, s.jwk())
	}
	body, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	j := &jwks{}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/keys" {
			http.NotFound(w, r)
			return
		}
		j.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(j.Close)
	return j
}

// keysURL is the JWKS URL to configure.
func (j *jwks) keysURL() string { return j.URL + "/keys" }
