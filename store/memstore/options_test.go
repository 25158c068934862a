package memstore_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/memstore"
)

func TestOptions(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := memstore.NewWithUsers(memstore.Options{
		DefaultDomain:  "Example.NET",
		DefaultFolders: []store.DefaultFolder{{Name: "Sent Items", Use: store.SpecialSent}},
		PlusSeparator:  "-",
		Clock:          func() time.Time { return clock },
	}, map[string]string{"dora@example.net": "pw"})
	require.NoError(t, err)

	ds, err := s.Domains(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"example.net"}, ds, "the default domain is local")
	user, err := s.Authenticate(ctx, "dora", "pw")
	require.NoError(t, err)
	assert.Equal(t, "dora@example.net", user)

	mb, err := s.Mailbox(ctx, user)
	require.NoError(t, err)
	fs, err := mb.Folders(ctx)
	require.NoError(t, err)
	assert.Equal(t, []store.FolderInfo{
		{Name: "INBOX", Subscribed: true},
		{Name: "Sent Items", SpecialUse: store.SpecialSent, Subscribed: true},
	}, fs, "INBOX always exists")

	lk, err := s.LookupRecipient(ctx, "dora-Sent Items@example.net")
	require.NoError(t, err)
	assert.Equal(t, "Sent Items", lk.Folder)

	uid, err := s.Deliver(ctx, user, strings.NewReader("x"), store.DeliverOptions{})
	require.NoError(t, err)
	inbox, err := mb.Folder(ctx, "INBOX")
	require.NoError(t, err)
	l, err := inbox.List(ctx)
	require.NoError(t, err)
	require.Len(t, l, 1)
	assert.Equal(t, uid, l[0].UID)
	assert.True(t, clock.Equal(l[0].InternalDate), "the clock gives internal dates")
	st, err := inbox.Status(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, st.UIDValidity, uint32(clock.Unix()))

	// The password is stored hashed.
	rec, ok := s.Directory().User(user)
	require.True(t, ok)
	assert.True(t, strings.HasPrefix(rec.PasswordHash, "$argon2id$"))
}

func TestDeletedUserHandles(t *testing.T) {
	ctx := context.Background()
	s, err := memstore.NewWithUsers(memstore.Options{}, map[string]string{"eve@example.org": "pw"})
	require.NoError(t, err)
	mb, err := s.Mailbox(ctx, "eve@example.org")
	require.NoError(t, err)
	inbox, err := mb.Folder(ctx, "INBOX")
	require.NoError(t, err)
	require.NoError(t, s.DeleteUser(ctx, "eve@example.org"))
	_, err = inbox.List(ctx)
	assert.ErrorIs(t, err, store.ErrNoSuchUser)
	_, err = mb.Folders(ctx)
	assert.ErrorIs(t, err, store.ErrNoSuchUser)
	_, err = s.Deliver(ctx, "eve@example.org", strings.NewReader("x"), store.DeliverOptions{})
	assert.ErrorIs(t, err, store.ErrNoSuchUser)
}

func TestMoveWithinFolder(t *testing.T) {
	ctx := context.Background()
	s, err := memstore.NewWithUsers(memstore.Options{}, map[string]string{"eve@example.org": "pw"})
	require.NoError(t, err)
	mb, err := s.Mailbox(ctx, "eve@example.org")
	require.NoError(t, err)
	inbox, err := mb.Folder(ctx, "INBOX")
	require.NoError(t, err)
	uid, err := inbox.Append(ctx, strings.NewReader("a"), nil, time.Time{})
	require.NoError(t, err)
	res, err := inbox.Move(ctx, []store.UID{uid}, "inbox")
	require.NoError(t, err)
	l, err := inbox.List(ctx)
	require.NoError(t, err)
	require.Len(t, l, 1)
	assert.Equal(t, res.Dest[0], l[0].UID)
	assert.Greater(t, l[0].UID, uid)
	u, err := mb.Usage(ctx)
	require.NoError(t, err)
	assert.Equal(t, store.Usage{Bytes: 1, Messages: 1}, u)
}

func TestCancelledDelivery(t *testing.T) {
	s, err := memstore.NewWithUsers(memstore.Options{}, map[string]string{"eve@example.org": "pw"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Deliver(ctx, "eve@example.org", strings.NewReader("x"), store.DeliverOptions{})
	assert.ErrorIs(t, err, context.Canceled)
	mb, err := s.Mailbox(context.Background(), "eve@example.org")
	require.NoError(t, err)
	u, err := mb.Usage(context.Background())
	require.NoError(t, err)
	assert.Zero(t, u.Messages)
}

// TestUnknownUserHashedByOption checks that an unknown user is checked
// against a hash made by Options.HashPassword, once, so that it costs what
// a known user does whatever the configured hash (no timing oracle).
func TestUnknownUserHashedByOption(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int32
	s := memstore.New(memstore.Options{DefaultDomain: "example.org", HashPassword: func(pw string) (string, error) {
		calls.Add(1)
		return memstore.InsecureFastHash(pw)
	}})
	require.NoError(t, s.AddUser(ctx, "alice@example.org", "pw", store.Quota{}))
	require.Equal(t, int32(1), calls.Load())
	for _, u := range []string{"nobody", "nobody@example.org", "alice"} {
		_, err := s.Authenticate(ctx, u, "wrong")
		assert.ErrorIs(t, err, store.ErrAuthFailed)
	}
	assert.Equal(t, int32(2), calls.Load(), "one dummy hash, by the configured function")
}
