package pop3

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/store"
)

const (
	msg1 = "Subject: one\r\n\r\nHello\r\n.\r\n..dots\r\n" // 34 octets
	msg2 = "Subject: two\n\nbare LF\n"                    // 25 octets in CRLF
	msg3 = "Subject: three\r\n\r\nno final CRLF"          // 31 octets
)

func threeMessages(t *testing.T) *testStore {
	st := newTestStore(t)
	st.deliver(t, "u@example.org", msg1)
	st.deliver(t, "u@example.org", msg2)
	st.deliver(t, "u@example.org", msg3)
	return st
}

func TestTranscript(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.expect("+OK pop.test POP3 server ready")
	c.cmd("CAPA", "+OK Capability list follows", "TOP", "UIDL", "RESP-CODES",
		"AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN", "IMPLEMENTATION mailblocks", ".")
	c.cmd("STAT", "-ERR command not valid in this state")
	c.cmd("PASS pw", "-ERR USER first")
	c.cmd("APOP u 0123", "-ERR APOP not supported")
	c.cmd("USER u", "+OK send PASS")
	c.cmd("PASS wrong", "-ERR [AUTH] authentication failed")
	c.cmd("PASS pw", "-ERR USER first")
	c.cmd("user u", "+OK send PASS")
	c.cmd("pass pw", "+OK maildrop locked and ready")
	c.cmd("USER u", "-ERR command not valid in this state")
	c.cmd("CAPA", "+OK Capability list follows", "TOP", "UIDL", "RESP-CODES",
		"AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION mailblocks", ".")
	c.cmd("STAT", "+OK 3 90")
	c.cmd("LIST", "+OK 3 messages (90 octets)", "1 34", "2 25", "3 31", ".")
	c.cmd("LIST 2", "+OK 2 25")
	c.cmd("LIST 4", "-ERR no such message, only 3 messages in maildrop")
	c.cmd("LIST 0", "-ERR invalid message number")
	c.cmd("LIST x", "-ERR invalid message number")
	c.cmd("LIST 1 2", "-ERR wrong number of arguments")
	c.cmd("UIDL", "+OK unique-id listing follows",
		"1 "+st.uidl(t, 1), "2 "+st.uidl(t, 2), "3 "+st.uidl(t, 3), ".")
	c.cmd("UIDL 3", "+OK 3 "+st.uidl(t, 3))
	c.cmd("RETR 1", "+OK 34 octets", "Subject: one", "", "Hello", "..", "...dots", ".")
	c.cmd("RETR 2", "+OK 25 octets", "Subject: two", "", "bare LF", ".")
	c.cmd("RETR 3", "+OK 31 octets", "Subject: three", "", "no final CRLF", ".")
	c.cmd("TOP 1 0", "+OK top of message follows", "Subject: one", "", ".")
	c.cmd("TOP 1 2", "+OK top of message follows", "Subject: one", "", "Hello", "..", ".")
	c.cmd("TOP 1 x", "-ERR invalid number of lines")
	c.cmd("TOP 1", "-ERR wrong number of arguments")
	c.cmd("NOOP", "+OK")
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("DELE 1", "-ERR message 1 already deleted")
	c.cmd("RETR 1", "-ERR message 1 already deleted")
	c.cmd("LIST 1", "-ERR message 1 already deleted")
	c.cmd("STAT", "+OK 2 56")
	c.cmd("LIST", "+OK 2 messages (56 octets)", "2 25", "3 31", ".")
	c.cmd("UIDL", "+OK unique-id listing follows", "2 "+st.uidl(t, 2), "3 "+st.uidl(t, 3), ".")
	c.cmd("RSET", "+OK maildrop has 3 messages (90 octets)")
	c.cmd("DELE 3", "+OK message 3 deleted")
	c.cmd("XYZZY", "-ERR unknown command")
	c.cmd("STLS", "-ERR command not valid in this state")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off (2 messages left)")
	c.expectEOF()

	assert.Equal(t, []string{msg1, msg2}, st.inbox(t, "u@example.org"))
}

func TestQuitEmptiesMaildrop(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS pw", "DELE 1", "DELE 2", "DELE 3", "QUIT")
	c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK message 1 deleted",
		"+OK message 2 deleted", "+OK message 3 deleted",
		"+OK pop.test POP3 server signing off (maildrop empty)")
	c.expectEOF()
	assert.Empty(t, st.inbox(t, "u@example.org"))
}

func TestQuitInAuthorization(t *testing.T) {
	_, addr := startServer(t, newTestStore(t), testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off")
	c.expectEOF()
}

// TestPipelining sends a whole session in one packet (RFC 2449 6.6).
func TestPipelining(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("CAPA", "USER u", "PASS pw", "STAT", "LIST", "RETR 2", "DELE 2", "NOOP", "QUIT")
	c.expect("+OK Capability list follows", "TOP", "UIDL", "RESP-CODES",
		"AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN", "IMPLEMENTATION mailblocks", ".",
		"+OK send PASS", "+OK maildrop locked and ready", "+OK 3 90",
		"+OK 3 messages (90 octets)", "1 34", "2 25", "3 31", ".",
		"+OK 25 octets", "Subject: two", "", "bare LF", ".",
		"+OK message 2 deleted", "+OK",
		"+OK pop.test POP3 server signing off (2 messages left)")
	c.expectEOF()
	assert.Equal(t, []string{msg1, msg3}, st.inbox(t, "u@example.org"))
}

func TestLineLimits(t *testing.T) {
	_, addr := startServer(t, newTestStore(t), testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	// RFC 2449 section 4: 255 octets with CRLF is the longest command.
	c.cmd("USER "+strings.Repeat("a", 248), "+OK send PASS")
	c.cmd("USER "+strings.Repeat("a", 249), "-ERR line too long")
	c.cmd("USER "+strings.Repeat("a", 5000), "-ERR line too long")
	c.cmd("", "-ERR unknown command")
	c.cmd("US\x01R x", "-ERR unknown command")
	c.cmd("TOOLONGKEYWORD", "-ERR unknown command")
	c.cmd("NOOP", "-ERR command not valid in this state")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off")
}

func TestInsecureAuthRefused(t *testing.T) {
	st := threeMessages(t)
	opts := testOptions()
	opts.AllowInsecureAuth = false
	_, addr := startServer(t, st, opts)
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.cmd("CAPA", "+OK Capability list follows", "TOP", "UIDL", "RESP-CODES",
		"AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION mailblocks", ".")
	c.cmd("USER u", "-ERR [AUTH] plaintext authentication disallowed without TLS")
	c.cmd("PASS pw", "-ERR [AUTH] plaintext authentication disallowed without TLS")
	c.cmd("AUTH PLAIN "+plainIR("", "u", "pw"), "-ERR [AUTH] authentication disallowed without TLS")
	c.cmd("STLS", "-ERR STLS not available")
}

func plainIR(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

func TestAuthPlain(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.cmd("AUTH", "+OK", "PLAIN", ".")
	c.cmd("AUTH CRAM-MD5", "-ERR unsupported authentication mechanism")
	c.cmd("AUTH PLAIN !!!", "-ERR invalid base64 data")
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("nonul")), "-ERR invalid PLAIN response")
	c.cmd("AUTH PLAIN =", "-ERR invalid PLAIN response")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("*", "-ERR authentication cancelled")
	// Proxy authorization is not supported.
	c.cmd("AUTH PLAIN "+plainIR("other@example.org", "u", "pw"), "-ERR [AUTH] authentication failed")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(plainIR("u@example.org", "u", "pw"), "+OK maildrop locked and ready")
	c.cmd("STAT", "+OK 3 90")
	c.cmd("AUTH PLAIN", "-ERR command not valid in this state")

	c2 := dialRaw(t, addr)
	c2.prefix("+OK ")
	c2.cmd("AUTH PLAIN "+plainIR("", "u", "pw"), "-ERR [IN-USE] maildrop already locked")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off (3 messages left)")
	c.expectEOF()
	c2.cmd("AUTH plain "+plainIR("", "u", "pw"), "+OK maildrop locked and ready")
}

// TestLockContention: a second session of the same user gets [IN-USE]
// until the first ends; another user is not affected.
func TestLockContention(t *testing.T) {
	st := threeMessages(t)
	st.addUser(t, "v@example.org", "pw2")
	_, addr := startServer(t, st, testOptions())
	a := dialRaw(t, addr)
	a.prefix("+OK ")
	a.send("USER u", "PASS pw")
	a.expect("+OK send PASS", "+OK maildrop locked and ready")

	b := dialRaw(t, addr)
	b.prefix("+OK ")
	b.send("USER u@example.org", "PASS pw")
	b.expect("+OK send PASS", "-ERR [IN-USE] maildrop already locked")
	b.send("USER v", "PASS pw2")
	b.expect("+OK send PASS", "+OK maildrop locked and ready")

	a.cmd("QUIT", "+OK pop.test POP3 server signing off (3 messages left)")
	a.expectEOF()
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS pw")
	c.expect("+OK send PASS", "+OK maildrop locked and ready")
}

// TestDropWithoutQuit: deletions of a session that ends without QUIT are
// not applied (RFC 1939 section 6), and the lock is released.
func TestDropWithoutQuit(t *testing.T) {
	st := threeMessages(t)
	srv, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS pw", "DELE 1", "DELE 2")
	c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK message 1 deleted", "+OK message 2 deleted")
	c.c.Close()
	// Shutdown returns once every session has ended.
	require.NoError(t, srv.Shutdown(testContext(t)))
	assert.Len(t, st.inbox(t, "u@example.org"), 3)
}

func TestInactivityTimeout(t *testing.T) {
	st := threeMessages(t)
	opts := testOptions()
	opts.Timeout = time.Second
	_, addr := startServer(t, st, opts)
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS pw", "DELE 1")
	c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK message 1 deleted")
	// The server closes the idle session; no UPDATE state.
	c.expectEOF()
	assert.Len(t, st.inbox(t, "u@example.org"), 3)
	// And the lock is free again.
	d := dialRaw(t, addr)
	d.prefix("+OK ")
	d.send("USER u", "PASS pw")
	d.expect("+OK send PASS", "+OK maildrop locked and ready")
}

func TestFailedLogins(t *testing.T) {
	st := newTestStore(t)
	opts := testOptions()
	opts.AuthDelay = time.Millisecond
	opts.MaxFailedLogins = 2
	_, addr := startServer(t, st, opts)
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS bad")
	c.expect("+OK send PASS", "-ERR [AUTH] authentication failed")
	c.send("USER nobody", "PASS bad")
	c.expect("+OK send PASS", "-ERR [AUTH] too many authentication failures")
	c.expectEOF()
}

// TestAuthDelay: the answer to a failed login waits for AuthDelay, and
// Close interrupts the wait.
func TestAuthDelay(t *testing.T) {
	opts := testOptions()
	opts.AuthDelay = time.Hour
	srv, addr := startServer(t, newTestStore(t), opts)
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS bad")
	c.expect("+OK send PASS")
	require.NoError(t, srv.Close())
	c.expectEOF()
}

func TestSTLS(t *testing.T) {
	st := threeMessages(t)
	cert := testutil.NewCert(t, testutil.CertOptions{})
	opts := testOptions()
	opts.AllowInsecureAuth = false
	opts.TLSConfig = cert.ServerConfig()
	_, addr := startServer(t, st, opts)
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.cmd("CAPA", "+OK Capability list follows", "TOP", "UIDL", "RESP-CODES",
		"AUTH-RESP-CODE", "PIPELINING", "STLS", "IMPLEMENTATION mailblocks", ".")
	// A command pipelined behind STLS in clear text is dropped (RFC 2595
	// section 4, command injection).
	c.send("STLS", "USER injected")
	c.expect("+OK Begin TLS negotiation")
	tc := tls.Client(c.c, cert.ClientConfig("localhost"))
	require.NoError(t, tc.Handshake())
	c2 := &rawConn{t: t, c: tc, r: newReader(tc)}
	c2.cmd("CAPA", "+OK Capability list follows", "TOP", "UIDL", "RESP-CODES",
		"AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN", "IMPLEMENTATION mailblocks", ".")
	c2.cmd("PASS pw", "-ERR USER first")
	c2.cmd("STLS", "-ERR command not permitted when TLS active")
	c2.send("USER u", "PASS pw", "STAT", "QUIT")
	c2.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK 3 90",
		"+OK pop.test POP3 server signing off (3 messages left)")
}

func TestShutdownAndClose(t *testing.T) {
	st := threeMessages(t)
	srv, addr := startServer(t, st, testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.send("USER u", "PASS pw", "DELE 1")
	c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK message 1 deleted")

	// Shutdown waits for the session; when its context ends first, the
	// session is closed without UPDATE.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, srv.Shutdown(ctx), context.Canceled)
	c.expectEOF()
	assert.Len(t, st.inbox(t, "u@example.org"), 3)
	require.ErrorIs(t, srv.Serve(testutil.Listen(t)), ErrServerClosed)
}

func TestStoreFailures(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		fs := newFaultStore()
		fs.add(msg1)
		_, addr := startServer(t, fs, testOptions())
		c := dialRaw(t, addr)
		c.prefix("+OK ")
		c.send("USER u", "PASS pw")
		c.expect("+OK send PASS", "+OK maildrop locked and ready")
		fs.mu.Lock()
		fs.failOpen = errors.New("boom")
		fs.mu.Unlock()
		c.cmd("RETR 1", "-ERR [SYS/TEMP] cannot read message 1")
		fs.mu.Lock()
		fs.failOpen = nil
		delete(fs.msgs, 1)
		fs.mu.Unlock()
		c.cmd("TOP 1 0", "-ERR [SYS/PERM] message 1 no longer exists")
		c.cmd("UIDL 1", "+OK 1 0000002a00000001")
	})
	t.Run("read", func(t *testing.T) {
		fs := newFaultStore()
		fs.add(msg1)
		fs.breakRead = true
		_, addr := startServer(t, fs, testOptions())
		c := dialRaw(t, addr)
		c.prefix("+OK ")
		c.send("USER u", "PASS pw", "DELE 1", "RETR 1")
		c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK message 1 deleted",
			"-ERR message 1 already deleted")
		c.send("RSET", "RETR 1")
		c.expect("+OK maildrop has 1 messages (34 octets)", "+OK 34 octets")
		// A truncated message must not be terminated as if it were whole.
		rest, _ := readAll(c.r)
		assert.Equal(t, "Sub", rest)
		assert.Len(t, fs.msgs, 1)
	})
	t.Run("expunge", func(t *testing.T) {
		fs := newFaultStore()
		fs.add(msg1)
		fs.failExpunge = errors.New("boom")
		_, addr := startServer(t, fs, testOptions())
		c := dialRaw(t, addr)
		c.prefix("+OK ")
		c.send("USER u", "PASS pw", "DELE 1", "QUIT")
		c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK message 1 deleted",
			"-ERR [SYS/TEMP] some deleted messages not removed")
		c.expectEOF()
	})
}

// TestPartialLineFlush: a reply is not held back because the start of
// the next command is already buffered.
func TestPartialLineFlush(t *testing.T) {
	_, addr := startServer(t, threeMessages(t), testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	_, err := c.c.Write([]byte("USER u\r\nPASS pw\r\nSTAT\r\nQU"))
	require.NoError(t, err)
	c.expect("+OK send PASS", "+OK maildrop locked and ready", "+OK 3 90")
	c.send("IT")
	c.expect("+OK pop.test POP3 server signing off (3 messages left)")
}

// brokenStore fails where told to.
type brokenStore struct {
	*testStore
	authErr, mailboxErr error
}

func (b brokenStore) Authenticate(ctx context.Context, username, password string) (string, error) {
	if b.authErr != nil {
		return "", b.authErr
	}
	return b.testStore.Authenticate(ctx, username, password)
}

func (b brokenStore) Mailbox(ctx context.Context, user string) (store.Mailbox, error) {
	if b.mailboxErr != nil {
		return nil, b.mailboxErr
	}
	return b.testStore.Mailbox(ctx, user)
}

func TestLoginStoreErrors(t *testing.T) {
	tests := []struct {
		name                string
		authErr, mailboxErr error
		want                string
	}{
		{"auth backend down", errors.New("db down"), nil, "-ERR [SYS/TEMP] authentication temporarily unavailable"},
		{"unknown user", store.ErrNoSuchUser, nil, "-ERR [AUTH] authentication failed"},
		{"no mailbox", nil, store.ErrNoSuchUser, "-ERR [SYS/PERM] never heard of mailbox"},
		{"mailbox unavailable", nil, errors.New("disk gone"), "-ERR [SYS/TEMP] unable to open maildrop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := brokenStore{threeMessages(t), tt.authErr, tt.mailboxErr}
			_, addr := startServer(t, st, testOptions())
			c := dialRaw(t, addr)
			c.prefix("+OK ")
			c.send("USER u", "PASS pw")
			c.expect("+OK send PASS", tt.want)
			// Still in the AUTHORIZATION state.
			c.cmd("STAT", "-ERR command not valid in this state")
		})
	}
}
