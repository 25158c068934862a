package pop3

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
	"github.com/mailblocks/mailblocks/store/memstore"
)

// Hostile-client tests: each feeds the server bytes a broken or malicious
// client could send and checks a defined answer, that the server still
// serves a normal client afterwards, that no session is left behind and
// that the maildrop is exactly as it should be.

// hostileStore is a Store the tests can deliver to.
type hostileStore interface {
	Store
	store.Deliverer
}

// forEachHostileStore runs f against memstore and a maildir in
// t.TempDir(), each with the user u@example.org, password "pw".
func forEachHostileStore(t *testing.T, f func(t *testing.T, st hostileStore)) {
	t.Helper()
	for _, kind := range []struct {
		name string
		open func(t *testing.T) hostileStore
	}{
		{"memstore", func(t *testing.T) hostileStore { return newTestStore(t).Store }},
		{"maildir", func(t *testing.T) hostileStore {
			st, err := maildir.Open(t.TempDir(), maildir.Options{NoFsync: true, DefaultDomain: "example.org",
				HashPassword: memstore.InsecureFastHash})
			require.NoError(t, err)
			require.NoError(t, st.AddUser(context.Background(), "u@example.org", "pw", store.Quota{}))
			return st
		}},
	} {
		t.Run(kind.name, func(t *testing.T) { f(t, kind.open(t)) })
	}
}

func hostileDeliver(t *testing.T, st hostileStore, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		_, err := st.Deliver(context.Background(), "u@example.org", strings.NewReader(m), store.DeliverOptions{})
		require.NoError(t, err)
	}
}

// inboxCount is the number of messages in the INBOX of u@example.org.
func inboxCount(t *testing.T, st hostileStore) int {
	t.Helper()
	ctx := context.Background()
	mb, err := st.Mailbox(ctx, "u@example.org")
	require.NoError(t, err)
	f, err := mb.Folder(ctx, "INBOX")
	require.NoError(t, err)
	list, err := f.List(ctx)
	require.NoError(t, err)
	return len(list)
}

// waitNoSessions waits until the server has no session left: every
// connection a test closed has been noticed and its goroutine has ended.
func waitNoSessions(t *testing.T, srv *Server) {
	t.Helper()
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.sessions) == 0 && len(srv.locked) == 0
	}, ioTimeout, 10*time.Millisecond, "sessions or maildrop locks left behind")
}

// loginRaw dials and logs in as u@example.org.
func loginRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.cmd("USER u", "+OK send PASS")
	c.cmd("PASS pw", "+OK maildrop locked and ready")
	return c
}

// normalClient checks that the server still serves a well-behaved client
// and that the maildrop holds want messages.
func normalClient(t *testing.T, addr string, want int) {
	t.Helper()
	c := loginRaw(t, addr)
	c.send("STAT")
	c.prefix(fmt.Sprintf("+OK %d ", want))
	c.send("QUIT")
	c.prefix("+OK ")
	c.expectEOF()
}

func TestHostileCommandLength(t *testing.T) {
	_, addr := startServer(t, newTestStore(t), testOptions())
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	// RFC 2449 section 4: 255 octets including CRLF is the limit. NOOP
	// is not valid before login, which makes a good "line was parsed"
	// marker.
	c.cmd("NOOP "+strings.Repeat("a", 255-len("NOOP ")-2), "-ERR command not valid in this state")
	c.cmd("NOOP "+strings.Repeat("a", 256-len("NOOP ")-2), "-ERR line too long")
	c.cmd("NOOP "+strings.Repeat("a", 10000), "-ERR line too long")
	// A long line split over many TCP writes, then a normal command.
	for range 10 {
		_, err := c.c.Write([]byte(strings.Repeat("x", 1000)))
		require.NoError(t, err)
	}
	c.cmd("", "-ERR line too long")
	c.cmd("USER u", "+OK send PASS")
	c.cmd("PASS pw", "+OK maildrop locked and ready")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off (maildrop empty)")
	c.expectEOF()
}

func TestHostileMessageArguments(t *testing.T) {
	forEachHostileStore(t, func(t *testing.T, st hostileStore) {
		hostileDeliver(t, st, msg1, msg2)
		srv, addr := startServer(t, st, testOptions())
		c := loginRaw(t, addr)
		for _, cmd := range []string{"RETR", "DELE", "LIST", "UIDL"} {
			for _, tc := range []struct{ arg, want string }{
				{"0", "-ERR invalid message number"},
				{"-1", "-ERR invalid message number"},
				{"+1", "-ERR invalid message number"},
				{"1x", "-ERR invalid message number"},
				{"x", "-ERR invalid message number"},
				{"0x1", "-ERR invalid message number"},
				{"3", "-ERR no such message, only 2 messages in maildrop"},
				{"2147483648", "-ERR no such message, only 2 messages in maildrop"},
				{"9223372036854775807", "-ERR no such message, only 2 messages in maildrop"},
				{"9223372036854775808", "-ERR invalid message number"},
				{"99999999999999999999999999", "-ERR invalid message number"},
				{"1 1", "-ERR wrong number of arguments"},
			} {
				c.cmd(cmd+" "+tc.arg, tc.want)
			}
		}
		c.cmd("RETR", "-ERR wrong number of arguments")
		c.cmd("DELE", "-ERR wrong number of arguments")
		c.cmd("TOP 1", "-ERR wrong number of arguments")
		c.cmd("TOP 0 0", "-ERR invalid message number")
		c.cmd("TOP 3 0", "-ERR no such message, only 2 messages in maildrop")
		c.cmd("TOP 1 -1", "-ERR invalid number of lines")
		c.cmd("TOP 1 x", "-ERR invalid number of lines")
		c.cmd("TOP 1 +1", "-ERR invalid number of lines")
		c.cmd("TOP 1 99999999999999999999999999", "-ERR invalid number of lines")
		// A huge line count that fits: the whole message.
		c.cmd("TOP 1 9223372036854775807", "+OK top of message follows",
			"Subject: one", "", "Hello", "..", "...dots", ".")
		c.cmd("TOP 1 2147483647", "+OK top of message follows",
			"Subject: one", "", "Hello", "..", "...dots", ".")
		c.cmd("TOP 2 0", "+OK top of message follows", "Subject: two", "", ".")
		// DELE twice, then the message is gone for every command.
		c.cmd("DELE 1", "+OK message 1 deleted")
		c.cmd("DELE 1", "-ERR message 1 already deleted")
		c.cmd("RETR 1", "-ERR message 1 already deleted")
		c.cmd("TOP 1 0", "-ERR message 1 already deleted")
		c.cmd("STAT", "+OK 1 25")
		c.cmd("QUIT", "+OK pop.test POP3 server signing off (1 messages left)")
		c.expectEOF()
		waitNoSessions(t, srv)
		assert.Equal(t, 1, inboxCount(t, st))
		normalClient(t, addr, 1)
	})
}

func TestHostileRsetThenQuit(t *testing.T) {
	forEachHostileStore(t, func(t *testing.T, st hostileStore) {
		hostileDeliver(t, st, msg1, msg2, msg3)
		srv, addr := startServer(t, st, testOptions())
		c := loginRaw(t, addr)
		c.cmd("DELE 1", "+OK message 1 deleted")
		c.cmd("DELE 3", "+OK message 3 deleted")
		c.cmd("RSET", "+OK maildrop has 3 messages (90 octets)")
		c.cmd("QUIT", "+OK pop.test POP3 server signing off (3 messages left)")
		c.expectEOF()
		waitNoSessions(t, srv)
		assert.Equal(t, 3, inboxCount(t, st))

		// DELE then a dropped connection: no UPDATE state, nothing
		// deleted (RFC 1939 section 6).
		c = loginRaw(t, addr)
		c.cmd("DELE 2", "+OK message 2 deleted")
		c.c.Close()
		waitNoSessions(t, srv)
		assert.Equal(t, 3, inboxCount(t, st))
		normalClient(t, addr, 3)
	})
}

func TestHostilePipelined10000(t *testing.T) {
	st := newTestStore(t)
	st.deliver(t, "u@example.org", msg1)
	srv, addr := startServer(t, st, testOptions())
	c := loginRaw(t, addr)
	const n = 10000
	var b strings.Builder
	for i := range n {
		switch i % 4 {
		case 0:
			b.WriteString("NOOP\r\n")
		case 1:
			b.WriteString("STAT\r\n")
		case 2:
			b.WriteString("LIST 1\r\n")
		case 3:
			b.WriteString("BOGUS\r\n")
		}
	}
	b.WriteString("QUIT\r\n")
	// Write while reading: the answers exceed the socket buffers.
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c.c, b.String())
		werr <- err
	}()
	for i := range n {
		want := [...]string{"+OK", "+OK 1 34", "+OK 1 34", "-ERR unknown command"}[i%4]
		require.Equal(t, want, c.line(), "reply %d", i)
	}
	c.expect("+OK pop.test POP3 server signing off (1 messages left)")
	c.expectEOF()
	require.NoError(t, <-werr)
	waitNoSessions(t, srv)
}

func TestHostileAuth(t *testing.T) {
	opts := testOptions()
	cert := testutil.NewCert(t, testutil.CertOptions{Names: []string{"127.0.0.1"}})
	opts.TLSConfig = cert.ServerConfig()
	opts.MaxFailedLogins = 100
	srv, addr := startServer(t, newTestStore(t), opts)
	c := dialRaw(t, addr)
	c.prefix("+OK ")
	c.cmd("PASS pw", "-ERR USER first")
	c.cmd("USER", "-ERR missing user name")
	c.cmd("USER nobody", "+OK send PASS")
	c.cmd("USER u", "+OK send PASS") // the second USER replaces the first
	c.cmd("PASS pw", "+OK maildrop locked and ready")
	c.cmd("STLS", "-ERR command not valid in this state")
	c.cmd("USER u", "-ERR command not valid in this state")
	c.cmd("AUTH PLAIN", "-ERR command not valid in this state")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off (maildrop empty)")
	c.expectEOF()

	c = dialRaw(t, addr)
	c.prefix("+OK ")
	c.cmd("USER u", "+OK send PASS")
	c.cmd("USER "+strings.Repeat("u", 300), "-ERR line too long")
	c.cmd("PASS pw", "+OK maildrop locked and ready") // USER u still stands
	c.cmd("QUIT", "+OK pop.test POP3 server signing off (maildrop empty)")
	c.expectEOF()

	c = dialRaw(t, addr)
	c.prefix("+OK ")
	c.cmd("AUTH PLAIN !!!notbase64", "-ERR invalid base64 data")
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("no NULs")), "-ERR invalid PLAIN response")
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u\x00pw\x00x")), "-ERR invalid PLAIN response")
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u\x00wrong")), "-ERR [AUTH] authentication failed")
	c.cmd("AUTH PLAIN =", "-ERR invalid PLAIN response")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("%%%garbage%%%", "-ERR invalid base64 data")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("*", "-ERR authentication cancelled")
	// A continuation of 1 MB: refused, consumed, and the session goes on.
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(strings.Repeat("QUFB", 1<<18), "-ERR line too long")
	c.cmd("NOOP", "-ERR command not valid in this state")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("\x00u\x00pw")), "+OK maildrop locked and ready")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off (maildrop empty)")
	c.expectEOF()
	waitNoSessions(t, srv)
}

// TestHostileDisconnectMidRetr: a client that goes away while a 5 MB
// message is being sent leaves the maildrop as it was and unlocked.
func TestHostileDisconnectMidRetr(t *testing.T) {
	forEachHostileStore(t, func(t *testing.T, st hostileStore) {
		big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 98)+"\r\n", 5<<20/100)
		hostileDeliver(t, st, msg1, big)
		srv, addr := startServer(t, st, testOptions())
		c := loginRaw(t, addr)
		c.cmd("DELE 1", "+OK message 1 deleted")
		c.send("RETR 2")
		c.prefix("+OK ")
		_, err := io.ReadFull(c.r, make([]byte, 64<<10))
		require.NoError(t, err)
		c.c.Close()
		waitNoSessions(t, srv)
		assert.Equal(t, 2, inboxCount(t, st), "nothing deleted")
		normalClient(t, addr, 2)
		waitNoSessions(t, srv)
	})
}

// TestHostileLoginRace: of two sessions logging in to one maildrop at the
// same time, exactly one gets it and the other [IN-USE].
func TestHostileLoginRace(t *testing.T) {
	st := newTestStore(t)
	srv, addr := startServer(t, st, testOptions())
	for range 20 {
		var conns [2]*rawConn
		for i := range conns {
			conns[i] = dialRaw(t, addr)
			conns[i].prefix("+OK ")
			conns[i].cmd("USER u", "+OK send PASS")
		}
		var wg sync.WaitGroup
		replies := make([]string, 2)
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.c.Write([]byte("PASS pw\r\n")); err != nil {
					return
				}
				l, _ := c.r.ReadString('\n')
				replies[i] = strings.TrimSuffix(l, "\r\n")
			}()
		}
		wg.Wait()
		ok, inUse := 0, 0
		for _, r := range replies {
			switch r {
			case "+OK maildrop locked and ready":
				ok++
			case "-ERR [IN-USE] maildrop already locked":
				inUse++
			}
		}
		require.Equal(t, 1, ok, "replies %q", replies)
		require.Equal(t, 1, inUse, "replies %q", replies)
		for _, c := range conns {
			c.c.Close()
		}
		waitNoSessions(t, srv)
	}
	normalClient(t, addr, 0)
}

// TestHostileHalfCommandThenEOF: half a command, then the client closes
// its side: the half line is not run, the session ends.
func TestHostileHalfCommandThenEOF(t *testing.T) {
	st := newTestStore(t)
	srv, addr := startServer(t, st, testOptions())
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(ioTimeout))
	_, err = r.ReadString('\n')
	require.NoError(t, err)
	_, err = c.Write([]byte("USER u\r\nPASS p"))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "+OK send PASS\r\n", string(rest))
	waitNoSessions(t, srv)
	normalClient(t, addr, 0)
}

// TestHostileExpungedElsewhere: a message of the snapshot expunged by
// another program (IMAP) since login: RETR and TOP fail with
// [SYS/PERM], DELE of it and of others still succeed at QUIT, and the
// others are deleted.
func TestHostileExpungedElsewhere(t *testing.T) {
	forEachHostileStore(t, func(t *testing.T, st hostileStore) {
		hostileDeliver(t, st, msg1, msg2, msg3)
		srv, addr := startServer(t, st, testOptions())
		c := loginRaw(t, addr)

		ctx := context.Background()
		mb, err := st.Mailbox(ctx, "u@example.org")
		require.NoError(t, err)
		f, err := mb.Folder(ctx, "INBOX")
		require.NoError(t, err)
		list, err := f.List(ctx)
		require.NoError(t, err)
		_, err = f.SetFlags(ctx, []store.UID{list[0].UID}, store.FlagsAdd, []string{store.FlagDeleted})
		require.NoError(t, err)
		_, err = f.Expunge(ctx, []store.UID{list[0].UID})
		require.NoError(t, err)

		c.cmd("RETR 1", "-ERR [SYS/PERM] message 1 no longer exists")
		c.cmd("TOP 1 0", "-ERR [SYS/PERM] message 1 no longer exists")
		c.cmd("DELE 1", "+OK message 1 deleted")
		c.cmd("DELE 2", "+OK message 2 deleted")
		c.send("QUIT")
		c.prefix("+OK ")
		c.expectEOF()
		waitNoSessions(t, srv)
		assert.Equal(t, 1, inboxCount(t, st))
		normalClient(t, addr, 1)
	})
}

// TestHostileStalledClient: a client that stops reading in the middle of
// a 5 MB RETR, or stops half way through a command line, holds neither
// its session nor the maildrop lock beyond Options.Timeout, and nothing
// is deleted.
func TestHostileStalledClient(t *testing.T) {
	st := newTestStore(t)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 98)+"\r\n", 5<<20/100)
	st.deliver(t, "u@example.org", big)
	opts := testOptions()
	opts.Timeout = time.Second
	srv, addr := startServer(t, st, opts)

	c := loginRaw(t, addr)
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("RSET", fmt.Sprintf("+OK maildrop has 1 messages (%d octets)", len(big)))
	c.send("RETR 1")
	// Read nothing more: the server's writes block once the socket
	// buffers are full, or its next read waits, until its timeout.
	waitNoSessions(t, srv)

	c2 := loginRaw(t, addr)
	_, err := c2.c.Write([]byte("STA"))
	require.NoError(t, err)
	waitNoSessions(t, srv)
	normalClient(t, addr, 1)
	assert.Equal(t, 1, len(st.inbox(t, "u@example.org")))
}
