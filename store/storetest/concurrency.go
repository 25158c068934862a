package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
)

func (r *runner) concurrency(t *testing.T) {
	t.Run("DeliverWhileListing", func(t *testing.T) {
		f := r.setup(t)
		const writers, perWriter = 8, 50
		mb := f.mailbox(alice)
		inbox := f.folder(mb, "INBOX")

		var wg sync.WaitGroup
		errs := make(chan error, writers*perWriter+1)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Half the writers deliver (SMTP), half append through
				// their own handle (IMAP).
				var fo store.Folder
				if w%2 == 1 {
					m, err := f.s.Mailbox(f.ctx, alice)
					if err == nil {
						fo, err = m.Folder(f.ctx, "INBOX")
					}
					if err != nil {
						errs <- err
						return
					}
				}
				for i := range perWriter {
					body := msg(fmt.Sprintf("w%d-m%d", w, i))
					var err error
					if fo != nil {
						_, err = fo.Append(f.ctx, strings.NewReader(body), nil, time.Time{})
					} else {
						_, err = f.s.Deliver(f.ctx, alice, strings.NewReader(body), store.DeliverOptions{})
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		listerDone := make(chan struct{})
		lists := 0
		go func() {
			defer close(listerDone)
			for {
				select {
				case <-done:
					return
				default:
				}
				l, err := inbox.List(f.ctx)
				if err != nil {
					errs <- err
					return
				}
				lists++
				for i := 1; i < len(l); i++ {
					if l[i].UID <= l[i-1].UID {
						errs <- fmt.Errorf("List not strictly ascending: UID %d after %d", l[i].UID, l[i-1].UID)
						return
					}
				}
				if _, err := inbox.Status(f.ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
		wg.Wait()
		close(done)
		<-listerDone
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		assert.Positive(t, lists)

		l := f.list(inbox)
		require.Len(t, l, writers*perWriter)
		seen := map[store.UID]bool{}
		for _, m := range l {
			require.False(t, seen[m.UID], "duplicate UID %d", m.UID)
			seen[m.UID] = true
		}
		bodies := map[string]bool{}
		for _, m := range l {
			bodies[f.read(inbox, m.UID)] = true
		}
		assert.Len(t, bodies, writers*perWriter, "every message is stored once, intact")
		st := f.status(inbox)
		assert.Equal(t, writers*perWriter, st.Messages)
		assert.Greater(t, st.UIDNext, l[len(l)-1].UID)
	})

	t.Run("ParallelUsersAndFlags", func(t *testing.T) {
		f := r.setup(t)
		inbox := f.folder(f.mailbox(alice), "INBOX")
		var uids []store.UID
		for i := range 20 {
			uids = append(uids, f.append(inbox, msg(fmt.Sprint(i))))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					var err error
					switch g {
					case 0:
						_, err = inbox.SetFlags(f.ctx, uids, store.FlagsAdd, []string{fmt.Sprintf("k%d", i%3)})
					case 1:
						_, err = inbox.SetFlags(f.ctx, uids[:10], store.FlagsRemove, []string{"k1"})
					case 2:
						_, err = f.s.Deliver(f.ctx, bob, strings.NewReader(msg(fmt.Sprint(i))), store.DeliverOptions{})
					case 3:
						_, err = inbox.Copy(f.ctx, uids[:2], "Archive")
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		assert.Len(t, f.list(f.folder(f.mailbox(bob), "INBOX")), 25)
		assert.Len(t, f.list(f.folder(f.mailbox(alice), "Archive")), 50)
		for _, m := range f.list(inbox)[10:] {
			assert.Subset(t, m.Flags, []string{"k0", "k1", "k2"})
		}
	})
}

// waitEvent reads ch until an event satisfies match.
func waitEvent(t *testing.T, ch <-chan store.Event, what string, match func(store.Event) bool) store.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "watch channel closed while waiting for %s", what)
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no %s event within %v", what, timeout)
		}
	}
}

// drain empties ch without waiting.
func drain(ch <-chan store.Event) int {
	n := 0
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n
			}
			n++
		default:
			return n
		}
	}
}

func (r *runner) events(t *testing.T) {
	t.Run("Kinds", func(t *testing.T) {
		f := r.setup(t)
		watcher := f.mailbox(alice)
		ch, err := watcher.Watch(f.ctx)
		require.NoError(t, err)

		// A delivery is seen by a watch on another handle.
		uid := f.deliver(alice, msg("event"), store.DeliverOptions{})
		waitEvent(t, ch, "MessageAdded", func(ev store.Event) bool {
			return ev.Kind == store.EventMessageAdded && ev.Folder == "INBOX" && (ev.UID == 0 || ev.UID == uid)
		})
		assert.Contains(t, f.uids(f.folder(watcher, "INBOX")), uid)

		other := f.folder(f.mailbox(alice), "INBOX")
		_, err = other.SetFlags(f.ctx, []store.UID{uid}, store.FlagsAdd, []string{store.FlagDeleted})
		require.NoError(t, err)
		waitEvent(t, ch, "FlagsChanged", func(ev store.Event) bool {
			return ev.Kind == store.EventFlagsChanged && ev.Folder == "INBOX" && (ev.UID == 0 || ev.UID == uid)
		})

		_, err = other.Expunge(f.ctx, nil)
		require.NoError(t, err)
		waitEvent(t, ch, "MessageExpunged", func(ev store.Event) bool {
			return ev.Kind == store.EventMessageExpunged && ev.Folder == "INBOX" && (ev.UID == 0 || ev.UID == uid)
		})

		mb2 := f.mailbox(alice)
		require.NoError(t, mb2.CreateFolder(f.ctx, "Watched", ""))
		waitEvent(t, ch, "FolderCreated", func(ev store.Event) bool {
			return ev.Kind == store.EventFolderCreated && ev.Folder == "Watched"
		})
		require.NoError(t, mb2.RenameFolder(f.ctx, "Watched", "Renamed"))
		waitEvent(t, ch, "FolderRenamed", func(ev store.Event) bool {
			return ev.Kind == store.EventFolderRenamed && ev.Folder == "Watched" && ev.NewName == "Renamed"
		})
		require.NoError(t, mb2.DeleteFolder(f.ctx, "Renamed"))
		waitEvent(t, ch, "FolderDeleted", func(ev store.Event) bool {
			return ev.Kind == store.EventFolderDeleted && ev.Folder == "Renamed"
		})
	})

	t.Run("SlowReceiver", func(t *testing.T) {
		// A receiver that does not read may miss events but always
		// gets at least one after any change.
		f := r.setup(t)
		ch, err := f.mailbox(alice).Watch(f.ctx)
		require.NoError(t, err)
		for i := range 100 {
			f.deliver(alice, msg(fmt.Sprint(i)), store.DeliverOptions{})
		}
		waitEvent(t, ch, "any", func(store.Event) bool { return true })
		drain(ch)
		uid := f.deliver(alice, msg("last"), store.DeliverOptions{})
		waitEvent(t, ch, "any after drain", func(store.Event) bool { return true })
		assert.Contains(t, f.uids(f.folder(f.mailbox(alice), "INBOX")), uid)
	})

	t.Run("Close", func(t *testing.T) {
		f := r.setup(t)
		ctx, cancel := context.WithCancel(f.ctx)
		ch1, err := f.mailbox(alice).Watch(ctx)
		require.NoError(t, err)
		ch2, err := f.mailbox(alice).Watch(f.ctx)
		require.NoError(t, err)
		cancel()
		timer := time.NewTimer(timeout)
		defer timer.Stop()
	loop:
		for {
			select {
			case _, ok := <-ch1:
				if !ok {
					break loop
				}
			case <-timer.C:
				t.Fatal("watch channel not closed after its context was cancelled")
			}
		}
		// The other watcher still works.
		f.deliver(alice, msg("still"), store.DeliverOptions{})
		waitEvent(t, ch2, "MessageAdded", func(ev store.Event) bool { return ev.Kind == store.EventMessageAdded })
	})
}

func (r *runner) persistence(t *testing.T) {
	f := r.setup(t)
	require.NotNil(t, f.h.Reopen, "Harness.Reopen must be set for every subtest or for none")
	ctx := f.ctx
	s := f.s
	require.NoError(t, s.AddDomain(ctx, "other.test"))
	require.NoError(t, s.SetQuota(ctx, bob, store.Quota{Bytes: 1 << 20, Messages: 100}))
	require.NoError(t, s.SetAlias(ctx, "pm@example.org", alice))
	require.NoError(t, s.SetList(ctx, "team@example.org", []string{alice, bob, "x@remote.test"}))
	require.NoError(t, s.SetCatchAll(ctx, "other.test", bob))
	require.NoError(t, s.SetPassword(ctx, bob, "bob-new"))
	mb := f.mailbox(alice)
	require.NoError(t, mb.CreateFolder(ctx, "Keep/Sub", ""))
	require.NoError(t, mb.SetSubscribed(ctx, "Keep/Sub", true))
	require.NoError(t, mb.DeleteFolder(ctx, "Junk"))
	date := time.Date(2023, 3, 4, 5, 6, 7, 0, time.UTC)
	for i := range 4 {
		f.deliver(alice, msg(fmt.Sprint(i)), store.DeliverOptions{Date: date, Flags: []string{"$P" + fmt.Sprint(i)}})
	}
	inbox := f.folder(mb, "INBOX")
	uids := f.uids(inbox)
	_, err := inbox.SetFlags(ctx, uids[1:2], store.FlagsAdd, []string{store.FlagSeen, store.FlagDeleted})
	require.NoError(t, err)
	_, err = inbox.Expunge(ctx, nil)
	require.NoError(t, err)
	_, err = inbox.SetFlags(ctx, uids[2:3], store.FlagsAdd, []string{store.FlagFlagged})
	require.NoError(t, err)
	f.append(f.folder(mb, "Keep/Sub"), msg("sub"), store.FlagSeen)

	type snapshot struct {
		folders []store.FolderInfo
		status  map[string]store.FolderStatus
		lists   map[string][]store.MessageInfo
		bodies  map[string]string
		usage   store.Usage
	}
	snap := func(s Store) snapshot {
		t.Helper()
		mb, err := s.Mailbox(ctx, alice)
		require.NoError(t, err)
		fs, err := mb.Folders(ctx)
		require.NoError(t, err)
		sn := snapshot{folders: fs, status: map[string]store.FolderStatus{}, lists: map[string][]store.MessageInfo{}, bodies: map[string]string{}}
		for _, fi := range fs {
			fo, err := mb.Folder(ctx, fi.Name)
			require.NoError(t, err)
			sn.status[fi.Name] = f.status(fo)
			l := f.list(fo)
			for i := range l {
				l[i].InternalDate = l[i].InternalDate.UTC().Truncate(time.Second)
				slices.Sort(l[i].Flags)
				sn.bodies[fmt.Sprint(fi.Name, l[i].UID)] = f.read(fo, l[i].UID)
			}
			sn.lists[fi.Name] = l
		}
		sn.usage, err = mb.Usage(ctx)
		require.NoError(t, err)
		return sn
	}
	before := snap(s)
	bobUsage, err := f.mailbox(bob).Usage(ctx)
	require.NoError(t, err)

	s2 := f.h.Reopen(t)
	require.NotNil(t, s2)
	after := snap(s2)
	assert.Equal(t, before.folders, after.folders)
	assert.Equal(t, before.status, after.status, "UIDVALIDITY, UIDNEXT and counts survive")
	assert.Equal(t, before.lists, after.lists, "UIDs, flags, dates and sizes survive")
	assert.Equal(t, before.bodies, after.bodies)
	assert.Equal(t, before.usage, after.usage)
	bu, err := s2.Mailbox(ctx, bob)
	require.NoError(t, err)
	bobUsage2, err := bu.Usage(ctx)
	require.NoError(t, err)
	assert.Equal(t, bobUsage, bobUsage2, "quota survives")

	us, err := s2.Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{alice, bob}, us)
	ds, err := s2.Domains(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{DefaultDomain, "other.test"}, ds)
	got, err := s2.Authenticate(ctx, "alice", alicePW)
	require.NoError(t, err)
	assert.Equal(t, alice, got)
	_, err = s2.Authenticate(ctx, bob, bobPW)
	assert.ErrorIs(t, err, store.ErrAuthFailed)
	got, err = s2.Authenticate(ctx, bob, "bob-new")
	require.NoError(t, err)
	assert.Equal(t, bob, got)
	for addr, want := range map[string][]string{
		"pm@example.org":   {alice},
		"team@example.org": {alice, bob},
		"any@other.test":   {bob},
	} {
		lk, err := s2.LookupRecipient(ctx, addr)
		require.NoError(t, err)
		assert.Equal(t, want, lk.Users, addr)
	}

	// New UIDs continue after the old ones, also after an expunge of the
	// highest.
	uid, err := s2.Deliver(ctx, alice, strings.NewReader(msg("after reopen")), store.DeliverOptions{})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, uid, before.status["INBOX"].UIDNext)
}
