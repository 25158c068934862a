package testutil

import (
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
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}
