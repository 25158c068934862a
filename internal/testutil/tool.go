package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequireTool returns the path of the real client program name (looked up
// in PATH, or checked as is when it contains a slash). When it is missing
// the test fails if the environment variable CI is non-empty (CI installs
// every client, so a missing one is a broken setup, not a reason to pass
// silently) and is skipped otherwise.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, fmt.Errorf("%s not installed: %w", name, err))
	}
	return p
}

// Unavailable ends a test that needs something this machine lacks (why
// says what): it fails when the environment variable CI is non-empty, CI
// being set up to provide everything, and is skipped otherwise.
func Unavailable(t testing.TB, why error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("required in CI: %v", why)
	}
	t.Skip(why)
}
