package server

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/logging"
)

// tlsProvider is the legacy TLS path: unwrap the server certificate Vault
// wrapped for this process. It uses the SDK's own implementation
// (api.VaultPluginTLSProviderContext) under a deadline that starts when
// go-plugin calls it, and turns its errors into one that says where it
// went and what to check, with the token redacted.
func (s *server) tlsProvider(w *startupWatch) func() (*tls.Config, error) {
	tlsCfg := s.flags.apiTLSConfig()
	return func() (*tls.Config, error) {
		token, _ := s.Lookup(hostenv.EnvUnwrapToken)
		addr, claimErr := unwrapAddr(token)
		if claimErr != nil {
			err := fmt.Errorf("reading the wrapping token in %s: %w", hostenv.EnvUnwrapToken, claimErr)
			w.record(err, "the host did not pass a valid wrapping token; it must set "+hostenv.EnvAutoMTLS+"=true or pass the token Vault generates")
			return nil, err
		}
		if err := s.flags.checkFiles(); err != nil {
			w.record(err, "fix the path in the -args given to vault plugin register: the plugin reads it as the user Vault runs it as")
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.UnwrapTimeout)
		defer cancel()
		// The SDK reads these two variables itself and returns no
		// provider when either is "true" (api before v1.8.0 reads only
		// the metadata mode); the plan already decided.
		provider := api.VaultPluginTLSProviderContext(ctx, tlsCfg)
		if provider == nil {
			return nil, nil
		}
		start := time.Now()
		cfg, err := provider()
		if err != nil {
			msg := strings.ReplaceAll(err.Error(), token, logging.Redacted)
			if ctx.Err() != nil {
				msg = fmt.Sprintf("no answer within %s: %s", s.UnwrapTimeout, msg)
			}
			err = fmt.Errorf("unwrapping the TLS certificate from Vault at %s: %s", addr, msg)
			w.record(err, "check that Vault's api_addr ("+addr+") is reachable from the plugin, and pass -ca-cert or -ca-path in the plugin's -args if Vault's certificate is not trusted by the system")
			return nil, err
		}
		s.Logger.Debug("unwrapped the TLS certificate", "addr", addr, "duration", time.Since(start).String())
		return cfg, nil
	}
}

// unwrapAddr reads the addr claim from the wrapping token without
// verifying it (as the SDK does: the plugin cannot verify it, and the
// unwrap call itself proves the token), to name Vault's address in errors.
// The token is a JWS in compact form, three base64url parts; reading it
// by hand spares every plugin a JOSE library, which the floor's vault/api
// does not link.
func unwrapAddr(token string) (string, error) {
	if token == "" {
		return "", errors.New("the variable is empty")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not an ES512-signed JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	// ES512 is what Vault signs the token with
	// (api.CubbyHoleJWTSignatureAlgorithm in api v1.13+).
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &header) != nil || header.Alg != "ES512" {
		return "", errors.New("not an ES512-signed JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("not an ES512-signed JWT")
	}
	var claims struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", errors.New("its claims are not JSON")
	}
	if claims.Addr == "" {
		return "", errors.New("it has no addr claim (Vault's api_addr)")
	}
	if u, err := url.Parse(claims.Addr); err != nil || u.Host == "" {
		return "", fmt.Errorf("its addr claim %q is not a URL", claims.Addr)
	}
	return claims.Addr, nil
}

// warnInsecureTLS warns when the legacy path's certificate check is off:
// always for the flag, which the operator set on purpose and may carry
// to a host on that path, and for the variable only on that path.
func (s *server) warnInsecureTLS(legacyPath bool) {
	if s.flags.insecure {
		s.Logger.Warn("-tls-skip-verify is set: Vault's API certificate is not verified on the legacy TLS path")
	}
	// The unwrap call's client starts from api.DefaultConfig, which reads
	// VAULT_SKIP_VERIFY from the plugin's environment; no flag can turn
	// verification back on, so say so where the operator looks.
	if v, _ := s.Lookup(envSkipVerify); legacyPath && isTrue(v) {
		s.Logger.Warn(envSkipVerify + " is set in the plugin's environment: Vault's API certificate is not verified on the legacy TLS path")
	}
}

// envSkipVerify is the Vault API client's variable that turns off
// certificate verification (api.EnvVaultSkipVerify).
const envSkipVerify = "VAULT_SKIP_VERIFY"

// isTrue reports whether v is true as the API client parses it.
func isTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}
