package pop3

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

// ioTimeout bounds every blocking step of a test; generous, because the
// machine is shared.
const ioTimeout = 30 * time.Second

// testOptions are the options most tests use: no login delay, cleartext
// allowed on loopback.
func testOptions() Options {
	return Options{Hostname: "pop.test", AllowInsecureAuth: true, AuthDelay: -1}
}

// startServer serves st on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, st Store, opts Options) (*Server, string) {
	t.Helper()
	srv := NewServer(st, opts)
	l := testutil.Listen(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(ioTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return srv, l.Addr().String()
}

// rawConn is a hand-driven client for exact transcripts.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// send writes the lines, each with CRLF, in one write.
func (c *rawConn) send(lines ...string) {
	c.t.Helper()
	_, err := c.c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
	require.NoError(c.t, err)
}

// line reads one line and checks it ends in CRLF.
func (c *rawConn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	require.NoError(c.t, err, "after %q", l)
	require.True(c.t, strings.HasSuffix(l, "\r\n"), "line %q does not end in CRLF", l)
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads one line per want and compares exactly.
func (c *rawConn) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		require.Equal(c.t, w, c.line())
	}
}

// cmd sends one command and expects the reply lines.
func (c *rawConn) cmd(line string, want ...string) {
	c.t.Helper()
	c.send(line)
	c.expect(want...)
}

// prefix reads one line and checks its beginning.
func (c *rawConn) prefix(p string) string {
	c.t.Helper()
	l := c.line()
	require.True(c.t, strings.HasPrefix(l, p), "got %q, want prefix %q", l, p)
	return l
}

// expectEOF checks that the server closed the connection.
func (c *rawConn) expectEOF() {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	require.Error(c.t, err, "got %q", l)
	require.Empty(c.t, l)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	t.Cleanup(cancel)
	return ctx
}
