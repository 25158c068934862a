package maildir_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

var hostileFolders = []string{
	"", "..", ".", "../x", "x/..", "x/../../y", "/etc", "/", "a//b", "a/", "./a",
	"a\x00b", "a\nb", "a\rb", "a\tb", "\x7f", "a\u0085b", "a\\b", `..\..\x`,
	strings.Repeat("x", 300), strings.Repeat("é/", 200) + "x", "bad\xffutf8",
}

var hostileUsers = []string{
	"../x@example.org", "..@example.org", ".@example.org", "a/b@example.org", "a\\b@example.org",
	"x@..", "x@../../tmp", "x@example.org/../..", "x@/etc", "a\x00b@example.org",
	"a\nb@example.org", "x@exa\x00mple.org", "x@.", "/abs@example.org", "x@[127.0.0.1]",
	"@example.org", "x@", "x",
}

// Hostile folder, user and domain names are refused with ErrBadName and
// create nothing, inside or outside the data directory.
func TestHostileNames(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	dir := filepath.Join(top, "data")
	s, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	require.NoError(t, s.AddUser(ctx, testUser, "pw", store.Quota{}))
	mb, err := s.Mailbox(ctx, testUser)
	require.NoError(t, err)
	f := openFolder(t, s, "INBOX")
	before := snapshot(t, top)

	for _, name := range hostileFolders {
		require.ErrorIs(t, mb.CreateFolder(ctx, name, ""), store.ErrBadName, "create %q", name)
		_, err := mb.Folder(ctx, name)
		require.ErrorIs(t, err, store.ErrBadName, "folder %q", name)
		require.ErrorIs(t, mb.DeleteFolder(ctx, name), store.ErrBadName, "delete %q", name)
		require.ErrorIs(t, mb.RenameFolder(ctx, "Sent", name), store.ErrBadName, "rename to %q", name)
		require.ErrorIs(t, mb.RenameFolder(ctx, name, "New"), store.ErrBadName, "rename from %q", name)
		require.ErrorIs(t, mb.SetSubscribed(ctx, name, true), store.ErrBadName, "subscribe %q", name)
		_, err = f.Copy(ctx, []store.UID{1}, name)
		require.ErrorIs(t, err, store.ErrBadName, "copy to %q", name)
	}
	for _, u := range hostileUsers {
		require.ErrorIs(t, s.AddUser(ctx, u, "pw", store.Quota{}), store.ErrBadName, "add user %q", u)
		_, err := s.Mailbox(ctx, u)
		require.Error(t, err, "mailbox %q", u)
		_, err = s.Deliver(ctx, u, strings.NewReader("x\n"), store.DeliverOptions{})
		require.Error(t, err, "deliver %q", u)
	}
	for _, d := range []string{"..", "../x", "a/b", "", "x\x00", "/etc"} {
		require.ErrorIs(t, s.AddDomain(ctx, d), store.ErrBadName, "domain %q", d)
	}
	// A hostile plus-addressing tag or folder option falls back to INBOX.
	for _, name := range hostileFolders {
		uid, err := s.Deliver(ctx, testUser, strings.NewReader("x\n"), store.DeliverOptions{Folder: name})
		require.NoError(t, err)
		require.NotZero(t, uid)
	}
	after := snapshot(t, top)
	var created []string
	for p := range after {
		if !before[p] && !strings.HasPrefix(p, "data/mail/example.org/alice/new/") &&
			!strings.HasPrefix(p, "data/mail/example.org/alice/cur/") {
			created = append(created, p)
		}
	}
	require.Empty(t, created, "nothing but the delivered messages may appear")
	_, err = os.Stat(filepath.Join(filepath.Dir(top), "x"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// snapshot lists every path under root, relative, without lock and index
// files that legitimately change.
func snapshot(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		base := filepath.Base(p)
		if strings.HasSuffix(base, ".lock") || strings.HasPrefix(base, "mailblocks-uidlist") {
			return nil
		}
		out[rel] = true
		return nil
	}))
	return out
}
