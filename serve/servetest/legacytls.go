package servetest

import "errors"

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
