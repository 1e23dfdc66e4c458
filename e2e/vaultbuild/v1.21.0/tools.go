//go:build tools

// Package vaultbuild pins the Vault release the e2e suite builds: its go.mod
// requires github.com/hashicorp/vault and replaces api and sdk with the
// tagged versions that release builds with (e2e/README.md says why).
package vaultbuild

import _ "github.com/hashicorp/vault"
