package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/store"
)

// requireOverQuota checks that err is the classifiable over-quota error.
func requireOverQuota(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, store.ErrOverQuota)
	var se *mailblocks.Error
	if assert.True(t, errors.As(err, &se), "over quota must be a *mailblocks.Error: %v", err) {
		assert.Equal(t, 552, se.Code)
		assert.Equal(t, mailblocks.EnhancedCode{5, 2, 2}, se.Enhanced)
		assert.False(t, se.Temporary())
	}
}

func (r *runner) quota(t *testing.T) {
	body := strings.Repeat("x", 98) + "\r\n" // 100 octets

	t.Run("NoneByDefault", func(t *testing.T) {
		f := r.setup(t)
		u, err := f.mailbox(alice).Usage(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, store.Quota{}, u.Quota)
		for range 20 {
			f.deliver(alice, body, store.DeliverOptions{})
		}
		u, err = f.mailbox(alice).Usage(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, store.Usage{Bytes: 2000, Messages: 20}, u)
	})

	t.Run("Bytes", func(t *testing.T) {
		f := r.setup(t)
		require.NoError(t, f.s.SetQuota(f.ctx, alice, store.Quota{Bytes: 250}))
		mb := f.mailbox(alice)
		inbox := f.folder(mb, "INBOX")
		f.deliver(alice, body, store.DeliverOptions{})
		f.append(inbox, body)
		_, err := f.s.Deliver(f.ctx, alice, strings.NewReader(body), store.DeliverOptions{})
		requireOverQuota(t, err)
		_, err = inbox.Append(f.ctx, strings.NewReader(body), nil, time.Time{})
		requireOverQuota(t, err)
		_, err = inbox.Copy(f.ctx, f.uids(inbox)[:1], "Archive")
		requireOverQuota(t, err)
		assert.Len(t, f.list(inbox), 2, "nothing was added")
		assert.Empty(t, f.list(f.folder(mb, "Archive")))
		// Exactly at the limit is allowed.
		f.deliver(alice, strings.Repeat("y", 48)+"\r\n", store.DeliverOptions{})
		u, err := mb.Usage(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, store.Usage{Bytes: 250, Messages: 3, Quota: store.Quota{Bytes: 250}}, u)
		// A move does not use more space.
		_, err = inbox.Move(f.ctx, f.uids(inbox)[:1], "Archive")
		require.NoError(t, err)
		// Freeing space makes room again.
		_, err = inbox.SetFlags(f.ctx, f.uids(inbox), store.FlagsAdd, []string{store.FlagDeleted})
		require.NoError(t, err)
		_, err = inbox.Expunge(f.ctx, nil)
		require.NoError(t, err)
		f.deliver(alice, body, store.DeliverOptions{})
		// Other users are not affected.
		for range 5 {
			f.deliver(bob, body, store.DeliverOptions{})
		}
	})

	t.Run("Messages", func(t *testing.T) {
		f := r.setup(t)
		require.NoError(t, f.s.AddUser(f.ctx, "carol@example.org", "pw", store.Quota{Messages: 2}))
		f.deliver("carol@example.org", body, store.DeliverOptions{})
		f.deliver("carol@example.org", body, store.DeliverOptions{})
		_, err := f.s.Deliver(f.ctx, "carol@example.org", strings.NewReader(body), store.DeliverOptions{})
		requireOverQuota(t, err)
		inbox := f.folder(f.mailbox("carol@example.org"), "INBOX")
		_, err = inbox.Append(f.ctx, strings.NewReader("x"), nil, time.Time{})
		requireOverQuota(t, err)
		u, err := f.mailbox("carol@example.org").Usage(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, store.Quota{Messages: 2}, u.Quota)
		assert.Equal(t, int64(2), u.Messages)
		// Raising the quota takes effect at once.
		require.NoError(t, f.s.SetQuota(f.ctx, "carol@example.org", store.Quota{}))
		f.deliver("carol@example.org", body, store.DeliverOptions{})
	})

	t.Run("LargeOverQuota", func(t *testing.T) {
		// A message much larger than the quota is refused without the
		// store needing to keep all of it.
		f := r.setup(t)
		require.NoError(t, f.s.SetQuota(f.ctx, alice, store.Quota{Bytes: 1000}))
		_, err := f.s.Deliver(f.ctx, alice, &generated{lines: 20000}, store.DeliverOptions{})
		requireOverQuota(t, err)
		u, err := f.mailbox(alice).Usage(f.ctx)
		require.NoError(t, err)
		assert.Zero(t, u.Messages)
		assert.Zero(t, u.Bytes)
	})

	if !r.quotaChecker {
		return
	}
	t.Run("Check", func(t *testing.T) {
		f := r.setup(t)
		qc, ok := f.s.(store.QuotaChecker)
		require.True(t, ok, "every store of the factory must implement store.QuotaChecker, or none")
		check := func(user string, size int64) error {
			t.Helper()
			return qc.CheckQuota(f.ctx, user, size)
		}
		// Without a quota anything fits.
		require.NoError(t, check(alice, 0))
		require.NoError(t, check(alice, 1<<40))
		assert.ErrorIs(t, check("nobody@example.org", 0), store.ErrNoSuchUser)
		assert.ErrorIs(t, check("nobody@example.org", 0), mailblocks.ErrNoSuchUser)

		require.NoError(t, f.s.SetQuota(f.ctx, alice, store.Quota{Bytes: 250}))
		f.deliver(alice, body, store.DeliverOptions{})
		require.NoError(t, check(alice, 150), "exactly what is left fits")
		require.NoError(t, check(alice, 0))
		err := check(alice, 151)
		requireOverQuota(t, err)
		assert.ErrorIs(t, err, mailblocks.ErrMailboxFull, "what smtpserver tests for")
		// The answer agrees with Deliver.
		_, err = f.s.Deliver(f.ctx, alice, strings.NewReader(strings.Repeat("z", 149)+"\r\n"), store.DeliverOptions{})
		requireOverQuota(t, err)
		f.deliver(alice, strings.Repeat("y", 148)+"\r\n", store.DeliverOptions{})
		// An exactly full mailbox takes nothing more.
		requireOverQuota(t, check(alice, 0))
		requireOverQuota(t, check(alice, 1))
		require.NoError(t, check(bob, 1000), "other users are not affected")

		// Freeing space, in any folder, makes room at once.
		inbox := f.folder(f.mailbox(alice), "INBOX")
		_, err = inbox.Move(f.ctx, f.uids(inbox)[:1], "Archive")
		require.NoError(t, err)
		requireOverQuota(t, check(alice, 0)) // a move frees nothing
		archive := f.folder(f.mailbox(alice), "Archive")
		_, err = archive.SetFlags(f.ctx, f.uids(archive), store.FlagsAdd, []string{store.FlagDeleted})
		require.NoError(t, err)
		_, err = archive.Expunge(f.ctx, nil)
		require.NoError(t, err)
		require.NoError(t, check(alice, 100))
		requireOverQuota(t, check(alice, 101))

		// A message quota, and a quota change, count at once.
		require.NoError(t, f.s.SetQuota(f.ctx, alice, store.Quota{Messages: 1}))
		requireOverQuota(t, check(alice, 0))
		require.NoError(t, f.s.SetQuota(f.ctx, alice, store.Quota{Messages: 2}))
		require.NoError(t, check(alice, 1<<30))
		require.NoError(t, f.s.SetQuota(f.ctx, alice, store.Quota{}))
		require.NoError(t, check(alice, 1<<40))

		// A deleted user is unknown.
		require.NoError(t, f.s.DeleteUser(f.ctx, bob))
		assert.ErrorIs(t, check(bob, 0), store.ErrNoSuchUser)
	})
}
