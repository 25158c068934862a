package maildir_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

// fastHash keeps the tests fast; production uses argon2id.
func fastHash(pw string) (string, error) {
	return store.HashPasswordParams(pw, store.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16})
}

func testOptions() maildir.Options {
	return maildir.Options{DefaultDomain: "example.org", HashPassword: fastHash}
}

// TestUnknownUserHashedByOption checks that an unknown user is checked
// against a hash made by Options.HashPassword, once, so that it costs what
// a known user does whatever the configured hash (no timing oracle).
func TestUnknownUserHashedByOption(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int32
	opts := testOptions()
	opts.NoFsync = true
	opts.HashPassword = func(pw string) (string, error) {
		calls.Add(1)
		return fastHash(pw)
	}
	s, err := maildir.Open(t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.AddUser(ctx, "alice@example.org", "pw", store.Quota{}))
	require.Equal(t, int32(1), calls.Load())
	for _, u := range []string{"nobody", "nobody@example.org", "alice"} {
		_, err := s.Authenticate(ctx, u, "wrong")
		assert.ErrorIs(t, err, store.ErrAuthFailed)
	}
	assert.Equal(t, int32(2), calls.Load(), "one dummy hash, by the configured function")
}
