package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/store"
)

// fakeDir is a map-backed Directory with quotas.
type fakeDir struct {
	domains map[string]bool
	users   map[string]bool     // canonical addresses
	aliases map[string][]string // address -> users
	full    map[string]bool     // users over quota
	fail    error               // returned by every lookup when set
}

func newFakeDir() *fakeDir {
	return &fakeDir{
		domains: map[string]bool{"example.org": true, "example.net": true},
		users:   map[string]bool{"alice@example.org": true, "bob@example.org": true, "full@example.org": true, "用户@example.org": true},
		aliases: map[string][]string{"postmaster@example.org": {"alice@example.org"}, "team@example.org": {"alice@example.org", "bob@example.org"}},
		full:    map[string]bool{"full@example.org": true},
	}
}

func (d *fakeDir) LookupRecipient(ctx context.Context, addr string) (store.Lookup, error) {
	if d.fail != nil {
		return store.Lookup{}, d.fail
	}
	dom := mailblocks.DomainOf(addr)
	if !d.domains[dom] {
		return store.Lookup{Kind: store.LookupNotOurDomain}, nil
	}
	a := strings.ToLower(addr)
	if d.users[a] || d.users[addr] {
		return store.Lookup{Kind: store.LookupLocal, Users: []string{a}}, nil
	}
	if us, ok := d.aliases[a]; ok {
		return store.Lookup{Kind: store.LookupLocal, Users: us}, nil
	}
	return store.Lookup{Kind: store.LookupUnknown}, nil
}

func (d *fakeDir) CheckQuota(ctx context.Context, user string, size int64) error {
	if d.full[user] {
		return store.ErrOverQuota
	}
	return nil
}

// fakeAuth is a map-backed Authenticator.
type fakeAuth map[string]string

func (a fakeAuth) Authenticate(ctx context.Context, user, pass string) (string, error) {
	if p, ok := a[user]; ok && p == pass {
		return user, nil
	}
	return "", store.ErrAuthFailed
}

// message is what the recording handler received.
type message struct {
	env  *mailblocks.Envelope
	body string
}

// recorder is a Handler that keeps the messages it accepted.
type recorder struct {
	mu   sync.Mutex
	msgs []message
	ch   chan message
	err  error // returned instead of accepting when set
}

func newRecorder() *recorder { return &recorder{ch: make(chan message, 2000)} }

func (r *recorder) Handle(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	m := message{env: env.Clone(), body: string(b)}
	r.msgs = append(r.msgs, m)
	r.ch <- m
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// next waits for the next accepted message.
func (r *recorder) next(t *testing.T) message {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message received")
	}
	return message{}
}

// testOptions returns options with the fakes wired in.
func testOptions(t testing.TB, rec *recorder) Options {
	return Options{
		Hostname:         "mx.test",
		Handler:          rec,
		Directory:        newFakeDir(),
		Authenticator:    fakeAuth{"alice@example.org": "secret", "bob@example.org": "hunter2"},
		TLSConfig:        testTLSConfig(t),
		Logger:           testLogger(t),
		AuthFailureDelay: -1,
	}
}

// testLogger logs into the test output.
func testLogger(t testing.TB) *slog.Logger { return testutil.Logger(t, slog.LevelDebug) }

// serve starts srv in mode on a loopback port and returns the address.
func serve(t testing.TB, srv *Server, mode Mode) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l, mode) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			require.ErrorIs(t, err, ErrServerClosed)
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
		// Wait for the sessions to end: they log to t.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	servers.Store(l.Addr().String(), srv)
	return l.Addr().String()
}

// start creates a server with opts and serves it in mode.
func start(t testing.TB, opts Options, mode Mode) (*Server, string) {
	srv := New(opts)
	return srv, serve(t, srv, mode)
}

// testTLSConfig presents a self-signed certificate for "mx.test",
// localhost and 127.0.0.1.
func testTLSConfig(t testing.TB) *tls.Config {
	return testutil.NewCert(t, testutil.CertOptions{Names: []string{"mx.test", "localhost", "127.0.0.1"}}).ServerConfig()
}

// clientTLS trusts any certificate (the test one is self-signed).
func clientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "mx.test"}
}

// script is a raw SMTP client for exact protocol tests.
type script struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *script {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	return &script{t: t, conn: c, r: bufio.NewReader(c)}
}

// reply reads one (possibly multi-line) reply and returns its lines.
func (s *script) reply() []string {
	s.t.Helper()
	var lines []string
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(s.t, err, "reading reply after %q", lines)
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return lines
		}
	}
}

// send writes a command line and returns the last line of the reply.
func (s *script) send(cmd string) string {
	s.t.Helper()
	s.write(cmd + "\r\n")
	r := s.reply()
	return r[len(r)-1]
}

func (s *script) write(data string) {
	s.t.Helper()
	_, err := io.WriteString(s.conn, data)
	require.NoError(s.t, err)
}

// expect sends cmd and checks that the reply starts with prefix.
func (s *script) expect(cmd, prefix string) string {
	s.t.Helper()
	got := s.send(cmd)
	require.True(s.t, strings.HasPrefix(got, prefix), "%s: got %q, want %q", cmd, got, prefix)
	return got
}

// greet reads the greeting and says EHLO.
func (s *script) greet() []string {
	s.t.Helper()
	g := s.reply()
	require.True(s.t, strings.HasPrefix(g[0], "220 "), "greeting %q", g)
	s.write("EHLO client.test\r\n")
	r := s.reply()
	require.True(s.t, strings.HasPrefix(r[0], "250"), "EHLO %q", r)
	return r
}

// greeted starts a server with opts in mode, connects, and has the
// client greeted with EHLO: the opening of most transcripts.
func greeted(t *testing.T, opts Options, mode Mode) *script {
	t.Helper()
	_, addr := start(t, opts, mode)
	s := dial(t, addr)
	s.greet()
	return s
}

// closed reports whether the server closed the connection (EOF).
func (s *script) closed() bool {
	s.t.Helper()
	_, err := s.r.ReadByte()
	return err != nil
}

// dataMsg sends DATA with msg (already CRLF) and returns the final reply.
func (s *script) data(msg string) string {
	s.t.Helper()
	s.expect("DATA", "354")
	s.write(msg)
	if !strings.HasSuffix(msg, "\r\n") {
		s.write("\r\n")
	}
	return s.send(".")
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func hasLine(body, prefix string) bool {
	for _, l := range strings.Split(body, "\r\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

var _ = bytes.NewReader

func parsePrefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openSessions counts the sessions of the server listening on addr.
var servers sync.Map // addr -> *Server

func openSessions(addr string) int {
	v, ok := servers.Load(addr)
	if !ok {
		return 0
	}
	srv := v.(*Server)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.conns)
}
