module github.com/plugkit/vaultplugin/e2e

go 1.25.7
