//go:build race

package main

// raceEnabled: the test binary is built with -race, so vaultplugin is too.
const raceEnabled = true
