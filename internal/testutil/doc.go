// Package testutil holds the helpers that the tests of several mailblocks
// packages share: self-signed TLS certificates (for Go clients and for real
// ones such as swaks, Python, fetchmail or mbsync that read a PEM file),
// finding a real client binary with the CI fail/skip rule of the house,
// a goroutine-safe buffer for logs, a slog logger writing to the test log,
// and loopback listeners.
//
// It is test support, imported only from _test.go files. Like everything
// under internal/ it sits at layer 0: it imports the standard library and
// testify, nothing of this module.
package testutil
