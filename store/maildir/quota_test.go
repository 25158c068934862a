package maildir_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

// Concurrent deliveries from two Store instances (two processes) never
// exceed the quota: the check and the commit share the mailbox lock.
func TestQuotaUnderConcurrentDelivery(t *testing.T) {
	ctx := context.Background()
	s1, dir := newStore(t)
	require.NoError(t, s1.SetQuota(ctx, testUser, store.Quota{Messages: 10}))
	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	var ok, over atomic.Int32
	var wg sync.WaitGroup
	for i := range 4 {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			for range 5 {
				_, err := s.Deliver(ctx, testUser, strings.NewReader("Subject: q\n\nx\n"), store.DeliverOptions{})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrOverQuota):
					over.Add(1)
					var me *mailblocks.Error
					require.True(t, errors.As(err, &me))
					require.Equal(t, 552, me.Code)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(10), ok.Load())
	require.Equal(t, int32(10), over.Load())
	mb, err := s2.Mailbox(ctx, testUser)
	require.NoError(t, err)
	u, err := mb.Usage(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(10), u.Messages)
	require.Equal(t, int64(10*len("Subject: q\r\n\r\nx\r\n")), u.Bytes)
	require.Equal(t, store.Quota{Messages: 10}, u.Quota)
	// Nothing was left behind in tmp/ by the refused deliveries.
	require.Empty(t, filesIn(t, inboxDir(dir)+"/tmp"))
}

// Messages expunged by another instance free their quota at once, although
// the cheap usage count of this instance still lists them.
func TestQuotaFreedByOtherInstance(t *testing.T) {
	ctx := context.Background()
	s1, dir := newStore(t)
	require.NoError(t, s1.SetQuota(ctx, testUser, store.Quota{Messages: 2}))
	deliver(t, s1, "a\n")
	deliver(t, s1, "b\n")
	_, err := s1.Deliver(ctx, testUser, strings.NewReader("c\n"), store.DeliverOptions{})
	require.ErrorIs(t, err, store.ErrOverQuota)

	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	f2 := openFolder(t, s2, "INBOX")
	_, err = f2.SetFlags(ctx, []store.UID{1}, store.FlagsAdd, []string{store.FlagDeleted})
	require.NoError(t, err)
	_, err = f2.Expunge(ctx, nil)
	require.NoError(t, err)

	require.Equal(t, store.UID(3), deliver(t, s1, "c\n"))
}

// CheckQuota sees what another instance delivered and expunged: it reads
// the same indexes as the quota check of a delivery.
func TestCheckQuotaAcrossInstances(t *testing.T) {
	ctx := context.Background()
	s1, dir := newStore(t)
	require.NoError(t, s1.SetQuota(ctx, testUser, store.Quota{Messages: 2}))
	require.NoError(t, s1.CheckQuota(ctx, testUser, 0))
	deliver(t, s1, "a\n")

	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	require.NoError(t, s2.CheckQuota(ctx, testUser, 0))
	deliver(t, s2, "b\n")
	require.ErrorIs(t, s1.CheckQuota(ctx, testUser, 0), store.ErrOverQuota, "a delivery by the other instance counts")
	require.ErrorIs(t, s2.CheckQuota(ctx, testUser, 0), mailblocks.ErrMailboxFull)

	f2 := openFolder(t, s2, "INBOX")
	_, err = f2.SetFlags(ctx, []store.UID{1}, store.FlagsAdd, []string{store.FlagDeleted})
	require.NoError(t, err)
	_, err = f2.Expunge(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, s1.CheckQuota(ctx, testUser, 0), "an expunge by the other instance frees room")
}
