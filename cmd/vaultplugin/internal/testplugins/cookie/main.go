// Command cookie is a go-plugin plugin built for another host: its
// handshake cookie is not one of Vault's, so under Vault it refuses to
// start.
package main

import goplugin "github.com/hashicorp/go-plugin"

func main() {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "BASIC_PLUGIN",
			MagicCookieValue: "hello",
		},
		Plugins: goplugin.PluginSet{},
	})
}
