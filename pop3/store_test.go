package pop3

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/memstore"
)

// testStore is the store the tests serve (store/memstore), with helpers
// to fill and inspect it.
type testStore struct {
	*memstore.Store
}

// newTestStore has the user u@example.org, password "pw"; "example.org"
// is the default domain.
func newTestStore(t testing.TB) *testStore {
	t.Helper()
	ms, err := memstore.NewWithUsers(memstore.Options{DefaultDomain: "example.org"},
		map[string]string{"u@example.org": "pw"})
	require.NoError(t, err)
	return &testStore{ms}
}

func (s *testStore) addUser(t testing.TB, addr, pw string) {
	t.Helper()
	require.NoError(t, s.AddUser(context.Background(), addr, pw, store.Quota{}))
}

func (s *testStore) deliver(t testing.TB, user, msg string) {
	t.Helper()
	_, err := s.Deliver(context.Background(), user, strings.NewReader(msg), store.DeliverOptions{})
	require.NoError(t, err)
}

func (s *testStore) folder(t testing.TB, user string) store.Folder {
	t.Helper()
	ctx := context.Background()
	mb, err := s.Mailbox(ctx, user)
	require.NoError(t, err)
	f, err := mb.Folder(ctx, "INBOX")
	require.NoError(t, err)
	return f
}

// inbox returns the messages in the user's INBOX, as delivered (the
// store's CRLF turned back into what the test delivered is not possible
// for bare-LF messages, so those are compared in CRLF form by crlf).
func (s *testStore) inbox(t testing.TB, user string) []string {
	t.Helper()
	ctx := context.Background()
	f := s.folder(t, user)
	list, err := f.List(ctx)
	require.NoError(t, err)
	var out []string
	for _, m := range list {
		rc, err := f.Open(ctx, m.UID)
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		out = append(out, fromCRLF(string(b)))
	}
	return out
}

// uidl returns the expected UIDL of the n-th message of u@example.org.
func (s *testStore) uidl(t testing.TB, n int) string {
	t.Helper()
	ctx := context.Background()
	f := s.folder(t, "u@example.org")
	st, err := f.Status(ctx)
	require.NoError(t, err)
	list, err := f.List(ctx)
	require.NoError(t, err)
	return fmt.Sprintf("%08x%08x", st.UIDValidity, uint32(list[n-1].UID))
}

// fromCRLF undoes the store's CRLF normalisation for the test messages
// that were delivered with bare LFs.
func fromCRLF(s string) string {
	if s == strings.ReplaceAll(msg2, "\n", "\r\n") {
		return msg2
	}
	return s
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// readAll reads until the connection ends and returns what came.
func readAll(r *bufio.Reader) (string, error) {
	b, err := io.ReadAll(r)
	return string(b), err
}
