//go:build tools

// Package vaultbuild pins Vault v1.16.3 for the e2e suite: its go.mod requires
// github.com/hashicorp/vault and replaces api and sdk with tagged versions
// (see e2e/README.md).
package vaultbuild

import _ "github.com/hashicorp/vault"
