//go:build tools

// Package kv only holds the requirement on the KV engine's own main, which
// bench builds as the bare SDK side.
package kv

import _ "github.com/hashicorp/vault-plugin-secrets-kv/cmd/vault-plugin-secrets-kv"
