package maildir_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

const testUser = "alice@example.org"

// newStore opens a store in a fresh directory with one user.
func newStore(t *testing.T) (*maildir.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.AddUser(context.Background(), testUser, "secret", store.Quota{}))
	return s, dir
}

func openFolder(t testing.TB, s *maildir.Store, name string) store.Folder {
	t.Helper()
	ctx := context.Background()
	mb, err := s.Mailbox(ctx, testUser)
	require.NoError(t, err)
	f, err := mb.Folder(ctx, name)
	require.NoError(t, err)
	return f
}

func readAll(t *testing.T, f store.Folder, uid store.UID) string {
	t.Helper()
	rc, err := f.Open(context.Background(), uid)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

func TestDeliverListOpen(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	body := "Subject: hi\n\nline one\r\nline two\n"
	uid, err := s.Deliver(ctx, testUser, strings.NewReader(body), store.DeliverOptions{})
	require.NoError(t, err)
	require.Equal(t, store.UID(1), uid)
	uid2, err := s.Deliver(ctx, testUser, strings.NewReader(body), store.DeliverOptions{Flags: []string{`\Seen`, "$Label1"}})
	require.NoError(t, err)
	require.Equal(t, store.UID(2), uid2)

	f := openFolder(t, s, "INBOX")
	list, err := f.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	want := "Subject: hi\r\n\r\nline one\r\nline two\r\n"
	require.Equal(t, int64(len(want)), list[0].Size)
	require.Equal(t, []string{"$Label1", `\Seen`}, list[1].Flags)
	require.Equal(t, want, readAll(t, f, 1))
	require.Equal(t, want, readAll(t, f, 2))

	st, err := f.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, st.Messages)
	require.Equal(t, 1, st.Unseen)
	require.Equal(t, store.UID(3), st.UIDNext)
}
