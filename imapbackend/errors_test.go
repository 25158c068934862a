package imapbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/store"
)

func TestMapError(t *testing.T) {
	var logBuf bytes.Buffer
	s := &session{log: slog.New(slog.NewTextHandler(&logBuf, nil))}
	cases := []struct {
		err       error
		tryCreate bool
		code      imap.ResponseCode
	}{
		{store.ErrNoSuchFolder, false, imap.ResponseCodeNonExistent},
		{fmt.Errorf("x: %w", store.ErrNoSuchFolder), true, imap.ResponseCodeTryCreate},
		{store.ErrFolderExists, false, imap.ResponseCodeAlreadyExists},
		{store.ErrBadName, false, imap.ResponseCodeCannot},
		{store.ErrNotPermitted, false, imap.ResponseCodeCannot},
		{store.ErrOverQuota, true, imap.ResponseCodeOverQuota},
		{fmt.Errorf("deliver: %w", store.ErrOverQuota), false, imap.ResponseCodeOverQuota},
		{store.ErrNoSuchMessage, false, imap.ResponseCodeNonExistent},
		{imapNo(imap.ResponseCodeLimit, "x"), false, imap.ResponseCodeLimit},
		{fmt.Errorf("maildir: too many keywords: %w", store.ErrLimit), false, imap.ResponseCodeLimit},
		{errors.New("disk on fire"), false, imap.ResponseCodeServerBug},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			err := s.mapError("op", tc.err, tc.tryCreate)
			var ie *imap.Error
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, imap.StatusResponseTypeNo, ie.Type)
			assert.Equal(t, tc.code, ie.Code)
			assert.NotContains(t, ie.Text, "disk on fire")
		})
	}
	assert.Contains(t, logBuf.String(), "disk on fire", "internal errors are logged")
	assert.Nil(t, s.mapError("op", nil, false))
}

// brokenStore wraps a store: the folder "Broken" fails with an internal
// error, and Watch can be turned off to simulate changes the store does
// not announce (another program writing a maildir).
type brokenStore struct {
	testStore
	noWatch bool
}

func (b *brokenStore) Mailbox(ctx context.Context, user string) (store.Mailbox, error) {
	mb, err := b.testStore.Mailbox(ctx, user)
	if err != nil {
		return nil, err
	}
	return &brokenMailbox{Mailbox: mb, noWatch: b.noWatch}, nil
}

type brokenMailbox struct {
	store.Mailbox
	noWatch bool
}

func (m *brokenMailbox) Folder(ctx context.Context, name string) (store.Folder, error) {
	if name == "Broken" {
		return nil, errors.New("disk on fire")
	}
	return m.Mailbox.Folder(ctx, name)
}

func (m *brokenMailbox) Watch(ctx context.Context) (<-chan store.Event, error) {
	if m.noWatch {
		return nil, errors.New("no events here")
	}
	return m.Mailbox.Watch(ctx)
}

func TestInternalErrorHidden(t *testing.T) {
	var logs testutil.Buffer
	st := &brokenStore{testStore: newTestStore(t)}
	ts := newTestServerStore(t, st, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := ts.dial(t, nil)
	_, err := c.Select("Broken", nil).Wait()
	require.Error(t, err)
	assert.Equal(t, imap.ResponseCodeServerBug, imapCode(err))
	assert.NotContains(t, err.Error(), "disk on fire")
	assert.Contains(t, logs.String(), "disk on fire")
}

// TestPollWithoutEvents: without change events the session still sees
// changes, at the latest PollInterval after its last scan (clock
// injected through Options.Now).
func TestPollWithoutEvents(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	st := &brokenStore{testStore: newTestStore(t), noWatch: true}
	ts := newTestServerStore(t, st, Options{Now: clock, PollInterval: time.Minute})
	var u updates
	c := ts.dial(t, &imapclient.Options{UnilateralDataHandler: u.handler()})
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)

	ts.deliver(t, "INBOX", msgPlain)
	require.NoError(t, c.Noop().Wait())
	exists, _, _ := u.snapshot()
	assert.Empty(t, exists, "no event, view not stale yet")

	now.Add(int64(2 * time.Minute))
	require.NoError(t, c.Noop().Wait())
	exists, _, _ = u.snapshot()
	assert.Equal(t, []uint32{1}, exists)
}

// TestKeywordLimit: a maildir folder holds at most 26 keywords; the 27th
// is refused with NO [LIMIT] and the message keeps its flags.
func TestKeywordLimit(t *testing.T) {
	ts := newTestServerStore(t, newMaildirStore(t), Options{})
	ts.deliver(t, "INBOX", msgPlain)
	c := ts.dial(t, nil)
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	var kw []imap.Flag
	for i := 0; i < 26; i++ {
		kw = append(kw, imap.Flag(fmt.Sprintf("$kw%d", i)))
	}
	require.NoError(t, c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: kw}, nil).Close())
	err = c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$one-too-many"}}, nil).Close()
	var ie *imap.Error
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, imap.ResponseCodeLimit, ie.Code)
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Len(t, msgs[0].Flags, 26)
}
