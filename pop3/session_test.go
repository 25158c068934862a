package pop3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
	"github.com/mailblocks/mailblocks/store/memstore"
)

// TestSnapshot: messages that arrive during a session are not shown
// (RFC 1939 section 4); the next session sees them.
func TestSnapshot(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS pw")
	c.expect("+OK send PASS", "+OK maildrop locked and ready")
	st.deliver(t, "u@example.org", "Subject: late\r\n\r\nx\r\n")
	c.cmd("STAT", "+OK 3 90")
	c.cmd("LIST 4", "-ERR no such message, only 3 messages in maildrop")
	c.cmd("DELE 3", "+OK message 3 deleted")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off (2 messages left)")
	c.expectEOF()

	d := dialRaw(t, addr)
	d.prefix("+OK ")
	d.send("USER u", "PASS pw", "STAT")
	d.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK 3 79")
	assert.Equal(t, []string{msg1, msg2, "Subject: late\r\n\r\nx\r\n"}, st.inbox(t, "u@example.org"))
}

// TestFlagsAtUpdate: only the messages deleted are expunged, also when
// another program expunged one meanwhile; retrieved messages get \Seen.
func TestFlagsAtUpdate(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS pw", "DELE 1", "DELE 2")
	c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK message 1 deleted", "+OK message 2 deleted")
	c.cmd("RETR 3", "+OK 31 octets", "Subject: three", "", "no final CRLF", ".")
	// An IMAP client expunges message 2 and flags nothing else.
	ctx := context.Background()
	f := st.folder(t, "u@example.org")
	list, err := f.List(ctx)
	require.NoError(t, err)
	_, err = f.SetFlags(ctx, []store.UID{list[1].UID}, store.FlagsAdd, []string{store.FlagDeleted})
	require.NoError(t, err)
	_, err = f.Expunge(ctx, []store.UID{list[1].UID})
	require.NoError(t, err)

	c.cmd("QUIT", "+OK pop.test POP3 server signing off (1 messages left)")
	after, err := f.List(ctx)
	require.NoError(t, err)
	require.Len(t, after, 1)
	assert.Equal(t, list[2].UID, after[0].UID)
	assert.Contains(t, after[0].Flags, store.FlagSeen)
}

// TestUIDLStableAcrossRestarts serves a maildir, restarts store and
// server, and compares the unique-ids.
func TestUIDLStableAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := testContext(t)
	uidls := func() map[int]string {
		st, err := maildir.Open(dir, maildir.Options{NoFsync: true, DefaultDomain: "example.org",
			HashPassword: memstore.InsecureFastHash})
		require.NoError(t, err)
		defer st.Close()
		if err := st.AddUser(ctx, "u@example.org", "pw", store.Quota{}); err == nil {
			for _, m := range []string{msg1, msg2, msg3} {
				_, err := st.Deliver(ctx, "u@example.org", strings.NewReader(m), store.DeliverOptions{})
				require.NoError(t, err)
			}
		}
		srv, addr := startServer(t, st, testOptions())
		defer srv.Close()
		c, err := Dial(ctx, addr, ClientOptions{})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Login(ctx, "u", "pw"))
		ids, err := c.UIDL(ctx)
		require.NoError(t, err)
		require.NoError(t, c.Quit(ctx))
		return ids
	}
	first := uidls()
	require.Len(t, first, 3)
	assert.Len(t, map[string]bool{first[1]: true, first[2]: true, first[3]: true}, 3, "unique")
	for _, id := range first {
		assert.Regexp(t, regexp.MustCompile(`^[\x21-\x7e]{1,70}$`), id, "RFC 1939 unique-id syntax")
	}
	assert.Equal(t, first, uidls())
}

// apopStore adds APOP to a test store, with the secret "pw" for u.
type apopStore struct{ *testStore }

func (s apopStore) AuthenticateAPOP(ctx context.Context, username, timestamp, digest string) (string, error) {
	sum := md5.Sum([]byte(timestamp + "pw"))
	if (username == "u" || username == "u@example.org") && digest == hex.EncodeToString(sum[:]) {
		return "u@example.org", nil
	}
	return "", store.ErrAuthFailed
}

func TestAPOP(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, apopStore{st}, testOptions())
	c := dialRaw(t, addr)
	greeting := c.prefix("+OK pop.test POP3 server ready <")
	stamp := greeting[strings.IndexByte(greeting, '<'):]
	require.Regexp(t, `^<[^<>]+@pop\.test>$`, stamp)
	c.cmd("APOP u 0123456789abcdef0123456789abcdef", "-ERR [AUTH] authentication failed")
	c.cmd("APOP u", "-ERR usage: APOP name digest")
	sum := md5.Sum([]byte(stamp + "pw"))
	c.cmd("APOP u "+strings.ToUpper(hex.EncodeToString(sum[:])), "+OK maildrop locked and ready")
	c.cmd("STAT", "+OK 3 90")
}

func TestTraceAndLog(t *testing.T) {
	st := threeMessages(t)
	var trace, logs testutil.Buffer
	opts := testOptions()
	opts.Trace = &trace
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, addr := startServer(t, st, opts)
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS wrong", "AUTH PLAIN "+plainIR("", "u", "secret2"), "USER u", "PASS pw", "RETR 1", "QUIT")
	c.expect("+OK send PASS", "-ERR [AUTH] authentication failed", "-ERR [AUTH] authentication failed",
		"+OK send PASS", "+OK maildrop locked and ready", "+OK 34 octets", "Subject: one", "", "Hello", "..", "...dots", ".",
		"+OK pop.test POP3 server signing off (3 messages left)")
	c.expectEOF()
	require.NoError(t, srv.Shutdown(testContext(t)))

	tr := trace.String()
	assert.NotContains(t, tr, "wrong")
	assert.NotContains(t, tr, plainIR("", "u", "secret2"))
	assert.NotContains(t, tr, "Hello", "message contents are not traced")
	assert.Regexp(t, `(?m)^[0-9a-f]{12} C: PASS \*\*\*$`, tr)
	assert.Regexp(t, `(?m)^[0-9a-f]{12} C: AUTH PLAIN \*\*\*$`, tr)
	assert.Regexp(t, `(?m)^[0-9a-f]{12} S: \+OK 34 octets$`, tr)
	assert.Regexp(t, `(?m)^[0-9a-f]{12} S: <34 octets of message 1>$`, tr)

	lg := logs.String()
	assert.Contains(t, lg, `msg="pop3: authentication failed" session=`)
	assert.Contains(t, lg, "username=u failures=1")
	assert.Regexp(t, `logged in" session=[0-9a-f]{12} remote=127\.0\.0\.1:\d+ user=u@example.org messages=3`, lg)
	assert.NotContains(t, lg, "wrong")
}

// TestShutdownWaitsForQuit: Shutdown refuses new connections and closes
// sessions that have not logged in, but lets a logged-in session finish
// and apply its deletions.
// TestShutdownEndsIdleSessions: Shutdown ends a logged-in session that is
// waiting for a command, without UPDATE (its DELE is not applied), and
// returns without waiting for the client.
func TestShutdownEndsIdleSessions(t *testing.T) {
	st := threeMessages(t)
	srv, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS pw", "DELE 1")
	c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK message 1 deleted")

	idle := dialRaw(t, addr)
	idle.prefix("+OK ")
	idle.cmd("USER u", "+OK send PASS")

	require.NoError(t, srv.Shutdown(testContext(t)))
	idle.expectEOF()
	c.expectEOF()
	assert.Len(t, st.inbox(t, "u@example.org"), 3, "a session ended by shutdown deletes nothing")
	_, err := Dial(testContext(t), addr, ClientOptions{})
	require.Error(t, err, "no longer accepting")
}

func TestServeTLSWithoutConfig(t *testing.T) {
	srv := NewServer(newTestStore(t), Options{})
	require.Error(t, srv.ServeTLS(testutil.Listen(t)))
	require.Error(t, srv.ListenAndServe("256.0.0.1:x"))
}

var _ Store = (*memstore.Store)(nil)
var _ Store = (*maildir.Store)(nil)

// TestSizesMatchRetrieve: on both stores, the LIST size of a message is
// the number of octets RETR sends (before the terminating line), for
// CRLF, bare-LF and byte-stuffed messages.
func TestSizesMatchRetrieve(t *testing.T) {
	msgs := []string{msg1, msg2, "a\n.\n..\n.x\r\n\n\n", strings.Repeat("l\n", 50000)}
	ctx := testContext(t)
	stores := map[string]func() Store{
		"memstore": func() Store {
			st := newTestStore(t)
			for _, m := range msgs {
				st.deliver(t, "u@example.org", m)
			}
			return st
		},
		"maildir": func() Store {
			st, err := maildir.Open(t.TempDir(), maildir.Options{NoFsync: true, DefaultDomain: "example.org",
				HashPassword: memstore.InsecureFastHash})
			require.NoError(t, err)
			require.NoError(t, st.AddUser(ctx, "u@example.org", "pw", store.Quota{}))
			for _, m := range msgs {
				_, err := st.Deliver(ctx, "u@example.org", strings.NewReader(m), store.DeliverOptions{})
				require.NoError(t, err)
			}
			return st
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			_, addr := startServer(t, newStore(), testOptions())
			c, err := Dial(ctx, addr, ClientOptions{})
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.Login(ctx, "u", "pw"))
			list, err := c.List(ctx)
			require.NoError(t, err)
			require.Len(t, list, len(msgs))
			for i, m := range list {
				rc, err := c.Retrieve(ctx, m.Number)
				require.NoError(t, err)
				b, err := io.ReadAll(rc)
				require.NoError(t, err)
				assert.Equal(t, strings.ReplaceAll(strings.ReplaceAll(msgs[i], "\r\n", "\n"), "\n", "\r\n"), string(b))
				assert.Equal(t, m.Size, int64(len(b)), "message %d", m.Number)
			}
		})
	}
}
