package maildir_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

func inboxDir(dir string) string { return filepath.Join(dir, "mail", "example.org", "alice") }

func deliver(t *testing.T, s *maildir.Store, body string) store.UID {
	t.Helper()
	uid, err := s.Deliver(context.Background(), testUser, strings.NewReader(body), store.DeliverOptions{})
	require.NoError(t, err)
	return uid
}

func list(t testing.TB, f store.Folder) []store.MessageInfo {
	t.Helper()
	l, err := f.List(context.Background())
	require.NoError(t, err)
	return l
}

func uidsOf(l []store.MessageInfo) []store.UID {
	var out []store.UID
	for _, m := range l {
		out = append(out, m.UID)
	}
	return out
}

// filesIn lists the names in a maildir subdirectory.
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestLayout(t *testing.T) {
	s, dir := newStore(t)
	deliver(t, s, "Subject: a\n\nx\n")
	root := inboxDir(dir)
	for _, p := range []string{"cur", "new", "tmp", ".Sent/cur", ".Sent/maildirfolder", ".Archive/new",
		"mailblocks-uidlist", ".Sent/mailblocks-uidlist", "mailblocks-subscriptions", "mailblocks-specialuse"} {
		_, err := os.Stat(filepath.Join(root, p))
		assert.NoError(t, err, p)
	}
	_, err := os.Stat(filepath.Join(dir, "directory.json"))
	require.NoError(t, err)
	names := filesIn(t, filepath.Join(root, "new"))
	require.Len(t, names, 1)
	require.Regexp(t, `^\d+\.M\d+P\d+Q\d+_[0-9a-f]+\..+,S=14,W=17$`, names[0])
	data, err := os.ReadFile(filepath.Join(root, "new", names[0]))
	require.NoError(t, err)
	require.Equal(t, "Subject: a\n\nx\n", string(data), "LF on disk")
	require.Empty(t, filesIn(t, filepath.Join(root, "tmp")))
}

func TestFolderNamesOnDisk(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	mb, err := s.Mailbox(ctx, testUser)
	require.NoError(t, err)
	for name, disk := range map[string]string{
		"Lists/Work":  ".Lists.Work",
		"Entwürfe":    ".Entw&APw-rfe",
		"a.b/c":       ".a&AC4-b.c",
		"R&D":         ".R&-D",
		"日本語":         ".&ZeVnLIqe-",
		"INBOX/Child": ".INBOX.Child",
	} {
		require.NoError(t, mb.CreateFolder(ctx, name, ""), name)
		_, err := os.Stat(filepath.Join(inboxDir(dir), disk, "cur"))
		require.NoError(t, err, "%s → %s", name, disk)
	}
	fs, err := mb.Folders(ctx)
	require.NoError(t, err)
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	require.Subset(t, names, []string{"Lists", "Lists/Work", "Entwürfe", "a.b", "a.b/c", "R&D", "日本語", "INBOX/Child"})
	require.Equal(t, "INBOX", names[0])
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	for i := range 5 {
		deliver(t, s, fmt.Sprintf("Subject: %d\n\nbody\n", i))
	}
	f := openFolder(t, s, "INBOX")
	_, err := f.SetFlags(ctx, []store.UID{2}, store.FlagsAdd, []string{`\Seen`, "Work"})
	require.NoError(t, err)
	_, err = f.SetFlags(ctx, []store.UID{3}, store.FlagsAdd, []string{`\Deleted`})
	require.NoError(t, err)
	gone, err := f.Expunge(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []store.UID{3}, gone)
	st1, err := f.Status(ctx)
	require.NoError(t, err)
	before := list(t, f)

	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	f2 := openFolder(t, s2, "INBOX")
	st2, err := f2.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, st1.UIDValidity, st2.UIDValidity)
	require.Equal(t, st1.UIDNext, st2.UIDNext)
	require.Equal(t, before, list(t, f2))
	uid, err := s2.Deliver(ctx, testUser, strings.NewReader("x\n"), store.DeliverOptions{})
	require.NoError(t, err)
	require.Equal(t, store.UID(6), uid)
	// The password survived too.
	u, err := s2.Authenticate(ctx, "alice", "secret")
	require.NoError(t, err)
	require.Equal(t, testUser, u)
}

func TestUIDValidityNewAfterRecreate(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mb, err := s.Mailbox(ctx, testUser)
	require.NoError(t, err)
	var prev uint32
	for range 3 {
		require.NoError(t, mb.CreateFolder(ctx, "X", ""))
		f, err := mb.Folder(ctx, "X")
		require.NoError(t, err)
		st, err := f.Status(ctx)
		require.NoError(t, err)
		require.Greater(t, st.UIDValidity, prev)
		prev = st.UIDValidity
		require.NoError(t, mb.DeleteFolder(ctx, "X"))
	}
}

// A file dropped into new/ by another MDA gets the next UID; a flag
// changed by another client renaming the file keeps the UID.
func TestForeignChanges(t *testing.T) {
	s, dir := newStore(t)
	deliver(t, s, "Subject: one\n\n1\n")
	f := openFolder(t, s, "INBOX")
	require.Len(t, list(t, f), 1)

	root := inboxDir(dir)
	body := "Subject: foreign\n\nfrom procmail\n"
	require.NoError(t, os.WriteFile(filepath.Join(root, "tmp", "123.foreign.host"), []byte(body), 0o600))
	require.NoError(t, os.Rename(filepath.Join(root, "tmp", "123.foreign.host"), filepath.Join(root, "new", "123.foreign.host")))

	l := list(t, f)
	require.Equal(t, []store.UID{1, 2}, uidsOf(l))
	require.Equal(t, int64(len(body)+3), l[1].Size, "CRLF size counted for a file without W=")
	require.Equal(t, strings.ReplaceAll(body, "\n", "\r\n"), readAll(t, f, 2))

	// Another client marks it seen and flagged by renaming (new/ → cur/).
	cur := filesIn(t, filepath.Join(root, "cur"))
	var from string
	for _, n := range cur {
		if strings.HasPrefix(n, "123.foreign.host") {
			from = n
		}
	}
	if from == "" { // still in new/
		from = "../new/123.foreign.host"
	}
	require.NoError(t, os.Rename(filepath.Join(root, "cur", from), filepath.Join(root, "cur", "123.foreign.host:2,FS")))
	l = list(t, f)
	require.Equal(t, []store.UID{1, 2}, uidsOf(l))
	require.Equal(t, []string{`\Flagged`, `\Seen`}, l[1].Flags)

	// And deletes it.
	require.NoError(t, os.Remove(filepath.Join(root, "cur", "123.foreign.host:2,FS")))
	require.Equal(t, []store.UID{1}, uidsOf(list(t, f)))
	// The next delivery does not reuse UID 2.
	require.Equal(t, store.UID(3), deliver(t, s, "x\n"))
}

// Two Store instances on one directory behave like two processes: flock
// serialises their index updates, and each sees the other's messages.
func TestTwoInstancesConcurrent(t *testing.T) {
	ctx := context.Background()
	s1, dir := newStore(t)
	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	const per = 25
	var wg sync.WaitGroup
	uids := make(chan store.UID, 4*per)
	for _, s := range []*maildir.Store{s1, s2, s1, s2} {
		wg.Go(func() {
			for i := range per {
				uid, err := s.Deliver(ctx, testUser, strings.NewReader(fmt.Sprintf("Subject: %d\n\nx\n", i)), store.DeliverOptions{})
				if !assert.NoError(t, err) {
					return
				}
				uids <- uid
			}
		})
	}
	// A reader lists meanwhile; UIDs must only ever ascend.
	wg.Go(func() {
		f := openFolder(t, s2, "INBOX")
		for range 20 {
			l, err := f.List(ctx)
			if !assert.NoError(t, err) {
				return
			}
			for i := 1; i < len(l); i++ {
				assert.Less(t, l[i-1].UID, l[i].UID)
			}
		}
	})
	wg.Wait()
	close(uids)
	seen := map[store.UID]bool{}
	for u := range uids {
		require.False(t, seen[u], "UID %d given twice", u)
		seen[u] = true
	}
	require.Len(t, seen, 4*per)
	for _, s := range []*maildir.Store{s1, s2} {
		l := list(t, openFolder(t, s, "INBOX"))
		require.Len(t, l, 4*per)
		for _, m := range l {
			require.True(t, seen[m.UID])
		}
	}
}

func TestFlagsAndKeywords(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	deliver(t, s, "a\n")
	f := openFolder(t, s, "INBOX")
	out, err := f.SetFlags(ctx, []store.UID{1}, store.FlagsAdd, []string{`\seen`, `\Answered`, "Work", "$Forwarded"})
	require.NoError(t, err)
	require.Equal(t, []string{"$Forwarded", "Work", `\Answered`, `\Seen`}, out[0].Flags)
	cur := filesIn(t, filepath.Join(inboxDir(dir), "cur"))
	require.Len(t, cur, 1)
	require.True(t, strings.HasSuffix(cur[0], ":2,RSab"), cur[0])
	kw, err := os.ReadFile(filepath.Join(inboxDir(dir), "dovecot-keywords"))
	require.NoError(t, err)
	require.Equal(t, "0 $Forwarded\n1 Work\n", string(kw))

	out, err = f.SetFlags(ctx, []store.UID{1, 99}, store.FlagsRemove, []string{"work", `\Answered`})
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, []string{"$Forwarded", `\Seen`}, out[0].Flags)
	out, err = f.SetFlags(ctx, []store.UID{1}, store.FlagsReplace, []string{`\Draft`})
	require.NoError(t, err)
	require.Equal(t, []string{`\Draft`}, out[0].Flags)

	for i := range 24 {
		_, err = f.SetFlags(ctx, []store.UID{1}, store.FlagsAdd, []string{fmt.Sprintf("k%d", i)})
		require.NoError(t, err)
	}
	_, err = f.SetFlags(ctx, []store.UID{1}, store.FlagsAdd, []string{"one-too-many"})
	require.ErrorIs(t, err, maildir.ErrTooManyKeywords)
}

func TestCopyMoveKeepKeywordsAcrossFolders(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	deliver(t, s, "a\n")
	deliver(t, s, "b\n")
	in := openFolder(t, s, "INBOX")
	arch := openFolder(t, s, "Archive")
	// Different letter assignments in the two folders.
	_, err := arch.Append(ctx, strings.NewReader("z\n"), []string{"Other"}, time.Time{})
	require.NoError(t, err)
	_, err = in.SetFlags(ctx, []store.UID{1, 2}, store.FlagsAdd, []string{"Work", `\Flagged`})
	require.NoError(t, err)
	res, err := in.Copy(ctx, []store.UID{1}, "Archive")
	require.NoError(t, err)
	require.Equal(t, []store.UID{2}, res.Dest)
	res, err = in.Move(ctx, []store.UID{2}, "Archive")
	require.NoError(t, err)
	require.Equal(t, []store.UID{3}, res.Dest)
	l := list(t, arch)
	require.Len(t, l, 3)
	require.Equal(t, []string{"Work", `\Flagged`}, l[1].Flags)
	require.Equal(t, []string{"Work", `\Flagged`}, l[2].Flags)
	require.Equal(t, "b\r\n", readAll(t, arch, 3))
	require.Equal(t, []store.UID{1}, uidsOf(list(t, in)))
	// The copy is independent of the original.
	_, err = arch.SetFlags(ctx, []store.UID{2}, store.FlagsReplace, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"Work", `\Flagged`}, list(t, in)[0].Flags)
}

func TestTmpCleanup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now()
	opts := testOptions()
	opts.Clock = func() time.Time { return now }
	s, err := maildir.Open(dir, opts)
	require.NoError(t, err)
	require.NoError(t, s.AddUser(ctx, testUser, "pw", store.Quota{}))
	tmp := filepath.Join(inboxDir(dir), "tmp")
	old, fresh := filepath.Join(tmp, "old"), filepath.Join(tmp, "fresh")
	require.NoError(t, os.WriteFile(old, []byte("x"), 0o600))
	require.NoError(t, os.WriteFile(fresh, []byte("x"), 0o600))
	require.NoError(t, os.Chtimes(old, now.Add(-37*time.Hour), now.Add(-37*time.Hour)))
	require.NoError(t, os.Chtimes(fresh, now.Add(-35*time.Hour), now.Add(-35*time.Hour)))
	list(t, openFolder(t, s, "INBOX"))
	require.NoFileExists(t, old)
	require.FileExists(t, fresh)
}

// A crash in the middle of an index append leaves a torn line: it is
// ignored and overwritten.
func TestTornIndexLine(t *testing.T) {
	s, dir := newStore(t)
	deliver(t, s, "a\n")
	idx := filepath.Join(inboxDir(dir), "mailblocks-uidlist")
	fh, err := os.OpenFile(idx, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = fh.WriteString("2 17000")
	require.NoError(t, err)
	require.NoError(t, fh.Close())

	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	require.Equal(t, store.UID(2), deliver(t, s2, "b\n"))
	require.Equal(t, []store.UID{1, 2}, uidsOf(list(t, openFolder(t, s2, "INBOX"))))
	data, err := os.ReadFile(idx)
	require.NoError(t, err)
	require.NotContains(t, string(data), "2 17000\n2")
}

func TestWatchSeesOtherInstance(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s1, dir := newStore(t)
	opts := testOptions()
	opts.PollInterval = 50 * time.Millisecond
	s2, err := maildir.Open(dir, opts)
	require.NoError(t, err)
	mb, err := s2.Mailbox(ctx, testUser)
	require.NoError(t, err)
	f, err := mb.Folder(ctx, "INBOX")
	require.NoError(t, err)
	_, err = f.List(ctx) // s2 knows the folder before the change
	require.NoError(t, err)
	ch, err := mb.Watch(ctx)
	require.NoError(t, err)

	uid := deliver(t, s1, "Subject: from elsewhere\n\nx\n")
	waitEvent(t, ch, func(ev store.Event) bool {
		return ev.Kind == store.EventMessageAdded && ev.Folder == "INBOX" && ev.UID == uid
	})

	// A mail client renames the file to mark it seen: a flags event.
	root := inboxDir(dir)
	list(t, openFolder(t, s1, "INBOX")) // s1 moves it to cur/
	cur := filesIn(t, filepath.Join(root, "cur"))
	require.Len(t, cur, 1)
	base, _, _ := strings.Cut(cur[0], ":")
	require.NoError(t, os.Rename(filepath.Join(root, "cur", cur[0]), filepath.Join(root, "cur", base+":2,S")))
	waitEvent(t, ch, func(ev store.Event) bool {
		return ev.Kind == store.EventFlagsChanged && ev.UID == uid && store.HasFlag(ev.Flags, store.FlagSeen)
	})
	// And deletes it.
	require.NoError(t, os.Remove(filepath.Join(root, "cur", base+":2,S")))
	waitEvent(t, ch, func(ev store.Event) bool {
		return ev.Kind == store.EventMessageExpunged && ev.UID == uid
	})
}

func waitEvent(t *testing.T, ch <-chan store.Event, match func(store.Event) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if match(ev) {
				return
			}
		case <-timeout:
			t.Fatal("expected event did not arrive")
		}
	}
}

func TestReloadDirectory(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	require.NoError(t, s2.SetAlias(ctx, "postmaster@example.org", testUser))
	// s sees the change made by the other instance without a reload.
	l, err := s.LookupRecipient(ctx, "postmaster@example.org")
	require.NoError(t, err)
	require.Equal(t, []string{testUser}, l.Users)

	// A broken hand edit keeps the previous directory; Reload reports it.
	path := filepath.Join(dir, "directory.json")
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte("{broken"), 0o600))
	require.Error(t, s.Reload(ctx))
	_, err = s.Authenticate(ctx, testUser, "secret")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, good, 0o600))
	require.NoError(t, s.Reload(ctx))
}

func TestRenameKeepsUIDsOnDisk(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	mb, err := s.Mailbox(ctx, testUser)
	require.NoError(t, err)
	require.NoError(t, mb.CreateFolder(ctx, "Lists/Work", ""))
	w := openFolder(t, s, "Lists/Work")
	_, err = w.Append(ctx, strings.NewReader("a\n"), nil, time.Time{})
	require.NoError(t, err)
	st, err := w.Status(ctx)
	require.NoError(t, err)
	require.NoError(t, mb.SetSubscribed(ctx, "Lists/Work", true))

	require.NoError(t, mb.RenameFolder(ctx, "Lists", "Old/Lists"))
	root := inboxDir(dir)
	for _, d := range []string{".Old", ".Old.Lists", ".Old.Lists.Work"} {
		require.DirExists(t, filepath.Join(root, d))
	}
	require.NoDirExists(t, filepath.Join(root, ".Lists"))
	require.NoDirExists(t, filepath.Join(root, ".Lists.Work"))
	_, err = w.List(ctx)
	require.ErrorIs(t, err, store.ErrNoSuchFolder, "a handle on the old name")

	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	w2 := openFolder(t, s2, "Old/Lists/Work")
	st2, err := w2.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, st.UIDValidity, st2.UIDValidity)
	require.Equal(t, []store.UID{1}, uidsOf(list(t, w2)))
	mb2, err := s2.Mailbox(ctx, testUser)
	require.NoError(t, err)
	fs, err := mb2.Folders(ctx)
	require.NoError(t, err)
	for _, fi := range fs {
		if fi.Name == "Old/Lists/Work" {
			require.True(t, fi.Subscribed)
		}
		if fi.Name == "Sent" {
			require.Equal(t, store.SpecialSent, fi.SpecialUse)
		}
	}
}

// AddUser adopts a maildir that is already in place (a migration from
// another server): its messages and folders appear with fresh UIDs.
func TestAdoptExistingMaildir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	root := inboxDir(dir)
	for _, d := range []string{"cur", "new", "tmp", ".Old/cur", ".Old/new", ".Old/tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o700))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "cur", "1.a.host:2,S"), []byte("Subject: a\n\nx\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(root, "new", "2.b.host"), []byte("Subject: b\n\ny\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(root, ".Old", "cur", "3.c.host:2,RS"), []byte("Subject: c\n\nz\n"), 0o600))
	require.NoError(t, s.AddUser(ctx, testUser, "pw", store.Quota{}))

	l := list(t, openFolder(t, s, "INBOX"))
	require.Equal(t, []store.UID{1, 2}, uidsOf(l))
	require.Equal(t, []string{`\Seen`}, l[0].Flags)
	old := list(t, openFolder(t, s, "Old"))
	require.Len(t, old, 1)
	require.Equal(t, []string{`\Answered`, `\Seen`}, old[0].Flags)
	mb, err := s.Mailbox(ctx, testUser)
	require.NoError(t, err)
	u, err := mb.Usage(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), u.Messages)
}
