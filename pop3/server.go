package pop3

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// ErrServerClosed is returned by Serve, ServeTLS, ListenAndServe and
// ListenAndServeTLS after a call to Shutdown or Close.
var ErrServerClosed = errors.New("pop3: server closed")

// Store is what the server needs of a mailbox store: password checks and
// access to the user's INBOX. A store.Store satisfies it.
type Store interface {
	store.Authenticator
	store.Mailboxes
}

// APOPAuthenticator is an optional interface of a Store that can check an
// RFC 1939 section 7 APOP digest, MD5(timestamp + secret). APOP needs the
// shared secret in plaintext (or an equivalent) on the server; a store
// that keeps only password hashes cannot verify it, so APOP is offered
// (the greeting carries a timestamp) only when the Store implements this
// interface. Otherwise APOP is answered with -ERR.
type APOPAuthenticator interface {
	// AuthenticateAPOP returns the canonical address of the user when
	// digest (lowercase hex) is MD5(timestamp + secret) for username;
	// store.ErrAuthFailed otherwise.
	AuthenticateAPOP(ctx context.Context, username, timestamp, digest string) (user string, err error)
}

// Options configure a Server. The zero value works.
type Options struct {
	// Hostname is the name in the greeting and sign-off lines. Default:
	// os.Hostname(), or "localhost".
	Hostname string
	// TLSConfig enables STLS (RFC 2595) and is used by ServeTLS and
	// ListenAndServeTLS. Default nil: no TLS.
	TLSConfig *tls.Config
	// AllowInsecureAuth permits USER/PASS, APOP and AUTH on connections
	// that are not protected by TLS. Default false: without TLS the
	// client must send STLS first; USER and SASL are not advertised.
	AllowInsecureAuth bool
	// Timeout is the inactivity timeout: a session that sends no command
	// for this long is closed without entering the UPDATE state. It also
	// bounds each write and the TLS handshake. RFC 1939 section 3 asks
	// for at least 10 minutes; shorter values are accepted (for tests).
	// Default 10 minutes.
	Timeout time.Duration
	// Logger receives one record per login, logout and failure, with a
	// "session" attribute. Default nil: discard.
	Logger *slog.Logger
	// Trace, when not nil, receives the protocol trace of every session:
	// "<session> C: <line>" and "<session> S: <line>". Passwords and SASL
	// data are replaced by "***"; message contents are summarised.
	// Default nil: no trace.
	Trace io.Writer
	// MaxFailedLogins is the number of failed authentications after which
	// the connection is closed. Default 3.
	MaxFailedLogins int
	// AuthDelay is how long the answer to a failed authentication is
	// delayed, to slow down password guessing. Default 1 second; a
	// negative value means no delay.
	AuthDelay time.Duration
}

const (
	defaultTimeout         = 10 * time.Minute
	defaultMaxFailedLogins = 3
	defaultAuthDelay       = time.Second
)

// Server is a POP3 server. Create it with NewServer.
type Server struct {
	store  Store
	opts   Options
	logger *slog.Logger

	traceMu sync.Mutex

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	locked    map[string]bool // users whose maildrop is locked
	closing   bool
	doneCh    chan struct{} // closed when the last session ends during shutdown
	// draining is set by Shutdown: sessions end when they wait for their
	// next command.
	draining atomic.Bool

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // sessions
}

// NewServer returns a server that reads mail from st with opts.
func NewServer(st Store, opts Options) *Server {
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
		if opts.Hostname == "" {
			opts.Hostname = "localhost"
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MaxFailedLogins <= 0 {
		opts.MaxFailedLogins = defaultMaxFailedLogins
	}
	if opts.AuthDelay == 0 {
		opts.AuthDelay = defaultAuthDelay
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		store:     st,
		opts:      opts,
		logger:    logger,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
		locked:    make(map[string]bool),
		ctx:       ctx,
		cancel:    cancel,
	}
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pop3: %w", err)
	}
	return s.Serve(l)
}

// ListenAndServeTLS listens on addr and calls ServeTLS (implicit TLS, the
// "POP3S" of port 995, RFC 8314).
func (s *Server) ListenAndServeTLS(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pop3: %w", err)
	}
	return s.ServeTLS(l)
}

// ServeTLS serves implicit-TLS connections: it wraps l with
// Options.TLSConfig. Serving a listener that the caller has wrapped with
// tls.NewListener is equivalent: a *tls.Conn is always treated as secure
// and STLS is then refused.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.opts.TLSConfig == nil {
		l.Close()
		return errors.New("pop3: ServeTLS needs Options.TLSConfig")
	}
	return s.Serve(tls.NewListener(l, s.opts.TLSConfig))
}

// Serve accepts connections on l and serves each in its own goroutine. It
// returns ErrServerClosed after Shutdown or Close; l is closed on return.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("pop3: accept: %w", err)
			}
			// Transient failures (EMFILE, ECONNABORTED…): back off like
			// net/http instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("pop3: accept", "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.serveConn(conn) {
			return ErrServerClosed
		}
	}
}

// serveConn starts a session on conn in a goroutine; false if the server
// is closing (conn is then closed).
func (s *Server) serveConn(conn net.Conn) bool {
	sess := newSession(s, conn)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		conn.Close()
		return false
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.endSession(sess)
		sess.serve(s.ctx)
	}()
	return true
}

func (s *Server) endSession(sess *session) {
	sess.conn.Close()
	s.mu.Lock()
	delete(s.sessions, sess)
	if s.closing && len(s.sessions) == 0 && s.doneCh != nil {
		close(s.doneCh)
		s.doneCh = nil
	}
	s.mu.Unlock()
}

// stopAccepting marks the server closing and closes its listeners.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
}

// Shutdown stops accepting connections, closes the sessions that have not
// logged in (they hold nothing), and ends the logged-in ones as soon as they
// wait for their next command: a command in progress, such as a long RETR,
// completes first, and pipelined commands already received are
// answered. Those sessions end without the UPDATE state (RFC 1939 6), as
// when a client loses its connection: their deletions are not applied and
// every message stays in the maildrop, so nothing is lost; Dovecot's
// shutdown_clients does the same. Shutdown returns when every session has
// ended; if ctx is done first, the remaining sessions are closed as by
// Close and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	s.draining.Store(true)
	s.mu.Lock()
	for sess := range s.sessions {
		if !sess.loggedIn.Load() {
			sess.conn.Close()
			continue
		}
		// Wake a session blocked reading its next command; see the
		// matching check after SetReadDeadline in session.serve.
		sess.conn.SetReadDeadline(time.Now())
	}
	if len(s.sessions) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.doneCh == nil {
		s.doneCh = make(chan struct{})
	}
	done := s.doneCh
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close stops accepting connections and closes every session at once,
// without applying their deletions. It waits for session goroutines to
// return.
func (s *Server) Close() error {
	s.stopAccepting()
	s.cancel()
	s.mu.Lock()
	for sess := range s.sessions {
		sess.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// lock takes the maildrop lock of user; false if another session holds it.
func (s *Server) lock(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked[user] {
		return false
	}
	s.locked[user] = true
	return true
}

func (s *Server) unlock(user string) {
	s.mu.Lock()
	delete(s.locked, user)
	s.mu.Unlock()
}

// tracing reports whether Options.Trace is set, so that callers build
// trace lines only when they are written.
func (s *Server) tracing() bool { return s.opts.Trace != nil }

// trace writes one protocol trace line.
func (s *Server) trace(id, dir, line string) {
	if !s.tracing() {
		return
	}
	s.traceMu.Lock()
	defer s.traceMu.Unlock()
	fmt.Fprintf(s.opts.Trace, "%s %s: %s\n", id, dir, line)
}

func newSessionID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
