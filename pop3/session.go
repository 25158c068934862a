package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// state is a session's RFC 1939 state.
type state int

const (
	stateAuthorization state = iota
	stateTransaction
)

// session is one client connection.
type session struct {
	srv    *Server
	conn   net.Conn // the accepted connection, closed by Server.Close
	c      net.Conn // the current connection: conn, or TLS over it after STLS
	r      *bufio.Reader
	w      *bufio.Writer
	id     string
	logger *slog.Logger

	isTLS    bool
	state    state
	userName string // argument of USER, waiting for PASS
	failures int
	apop     string // the greeting's timestamp, when APOP is offered

	user string    // canonical user, in TRANSACTION
	drop *maildrop // in TRANSACTION
	// loggedIn is set on entering TRANSACTION; Shutdown closes the
	// sessions without it at once.
	loggedIn atomic.Bool
}

// timeoutConn bounds every write with the session timeout, so that a
// client that stops reading cannot hold a session forever.
type timeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c timeoutConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

func newSession(srv *Server, conn net.Conn) *session {
	id := newSessionID()
	s := &session{
		srv:  srv,
		conn: conn,
		id:   id,
		logger: srv.logger.With("session", id,
			"remote", conn.RemoteAddr().String()),
	}
	s.setConn(conn)
	return s
}

func (s *session) setConn(c net.Conn) {
	s.c = c
	s.r = bufio.NewReaderSize(c, 4096)
	s.w = bufio.NewWriterSize(timeoutConn{c, s.srv.opts.Timeout}, 32*1024)
	_, s.isTLS = c.(*tls.Conn)
}

// authAllowed: RFC 2595 section 2.3 / RFC 8314: no cleartext passwords
// over an unprotected connection unless the embedder allows it.
func (s *session) authAllowed() bool {
	return s.isTLS || s.srv.opts.AllowInsecureAuth
}

func (s *session) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.release()
	s.logger.Debug("pop3: connected")

	if tc, ok := s.c.(*tls.Conn); ok {
		hctx, hcancel := context.WithTimeout(ctx, s.srv.opts.Timeout)
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			s.logger.Info("pop3: TLS handshake failed", "err", err)
			return
		}
	}

	greeting := "+OK " + s.srv.opts.Hostname + " POP3 server ready"
	if _, ok := s.srv.store.(APOPAuthenticator); ok {
		// RFC 1939 section 7: a unique msg-id style timestamp.
		s.apop = fmt.Sprintf("<%d.%d.%s@%s>", os.Getpid(), time.Now().UnixNano(), s.id, s.srv.opts.Hostname)
		greeting += " " + s.apop
	}
	s.reply(greeting)
	if s.flush() != nil {
		return
	}

	for {
		s.c.SetReadDeadline(time.Now().Add(s.srv.opts.Timeout))
		// Checked after setting the deadline: Shutdown sets draining
		// before it moves the deadline to now, so either this sees it or
		// the read below returns at once.
		if s.srv.draining.Load() && !s.commandWaiting() {
			s.logger.Info("pop3: session ended by shutdown", "user", s.user)
			return
		}
		line, err := readLine(s.r, maxCommandLine)
		if errors.Is(err, errLineTooLong) {
			s.srv.trace(s.id, "C", "<line too long>")
			s.reply("-ERR line too long")
			if s.flush() != nil {
				return
			}
			continue
		}
		if err != nil {
			var ne net.Error
			if s.srv.draining.Load() {
				s.logger.Info("pop3: session ended by shutdown", "user", s.user)
			} else if errors.As(err, &ne) && ne.Timeout() {
				s.logger.Info("pop3: inactivity timeout", "user", s.user)
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger.Info("pop3: read", "err", err)
			}
			return
		}
		cmd, err := parseCommand(line)
		if err != nil {
			if s.srv.tracing() {
				s.srv.trace(s.id, "C", redactLine(line))
			}
			s.reply("-ERR unknown command")
		} else {
			if s.srv.tracing() {
				s.srv.trace(s.id, "C", redact(cmd, line))
			}
			if !s.dispatch(ctx, cmd) {
				s.flush()
				return
			}
		}
		// RFC 2449 section 6.6 (PIPELINING): answer a batch of commands
		// with as few packets as possible; flush only when no further
		// complete command is already waiting.
		if !s.commandWaiting() {
			if s.flush() != nil {
				return
			}
		}
	}
}

// commandWaiting reports whether a whole command line is buffered.
func (s *session) commandWaiting() bool {
	n := s.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := s.r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// reply writes one response line.
func (s *session) reply(line string) {
	s.srv.trace(s.id, "S", line)
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
}

func (s *session) replyf(format string, args ...any) {
	s.reply(fmt.Sprintf(format, args...))
}

func (s *session) flush() error {
	err := s.w.Flush()
	if err != nil {
		s.logger.Debug("pop3: write", "err", err)
	}
	return err
}

// dispatch runs one command; false ends the session.
func (s *session) dispatch(ctx context.Context, cmd command) bool {
	switch cmd.Name {
	case "QUIT":
		return s.cmdQuit(ctx)
	case "CAPA":
		s.cmdCapa()
		return true
	case "NOOP":
		if s.state != stateTransaction {
			break
		}
		s.reply("+OK")
		return true
	}
	if s.state == stateAuthorization {
		switch cmd.Name {
		case "USER":
			s.cmdUser(cmd)
			return true
		case "PASS":
			return s.cmdPass(ctx, cmd)
		case "APOP":
			return s.cmdAPOP(ctx, cmd)
		case "AUTH":
			return s.cmdAuth(ctx, cmd)
		case "STLS":
			return s.cmdSTLS()
		}
	} else {
		if s.transaction(ctx, cmd) {
			return true
		}
		if s.drop.broken {
			return false
		}
	}
	switch cmd.Name {
	case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL",
		"USER", "PASS", "APOP", "AUTH", "STLS":
		s.reply("-ERR command not valid in this state")
	default:
		s.reply("-ERR unknown command")
	}
	return true
}

// cmdCapa answers CAPA (RFC 2449 section 5), in both states.
func (s *session) cmdCapa() {
	s.reply("+OK Capability list follows")
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if s.state == stateAuthorization {
		if s.authAllowed() {
			caps = append(caps, "USER", "SASL PLAIN")
		}
		if s.srv.opts.TLSConfig != nil && !s.isTLS {
			caps = append(caps, "STLS")
		}
	}
	caps = append(caps, "IMPLEMENTATION mailblocks")
	for _, c := range caps {
		s.reply(c)
	}
	s.reply(".")
}

func (s *session) cmdUser(cmd command) {
	if !s.authAllowed() {
		s.reply("-ERR [AUTH] plaintext authentication disallowed without TLS")
		return
	}
	if cmd.Rest == "" {
		s.reply("-ERR missing user name")
		return
	}
	// The store cannot tell whether the name exists without the password
	// (store.Authenticator), and saying so would help guessing anyway.
	s.userName = cmd.Rest
	s.reply("+OK send PASS")
}

func (s *session) cmdPass(ctx context.Context, cmd command) bool {
	if !s.authAllowed() {
		s.reply("-ERR [AUTH] plaintext authentication disallowed without TLS")
		return true
	}
	if s.userName == "" {
		s.reply("-ERR USER first")
		return true
	}
	name := s.userName
	s.userName = ""
	return s.login(ctx, name, func() (string, error) {
		return s.srv.store.Authenticate(ctx, name, cmd.Rest)
	})
}

// cmdAPOP: RFC 1939 section 7. It is answered -ERR unless the store
// implements APOPAuthenticator, because verifying the digest needs the
// secret itself and stores keep only password hashes.
func (s *session) cmdAPOP(ctx context.Context, cmd command) bool {
	ap, ok := s.srv.store.(APOPAuthenticator)
	if !ok {
		s.reply("-ERR APOP not supported")
		return true
	}
	if !s.authAllowed() {
		s.reply("-ERR [AUTH] authentication disallowed without TLS")
		return true
	}
	if len(cmd.Args) != 2 {
		s.reply("-ERR usage: APOP name digest")
		return true
	}
	s.userName = ""
	return s.login(ctx, cmd.Args[0], func() (string, error) {
		return ap.AuthenticateAPOP(ctx, cmd.Args[0], s.apop, strings.ToLower(cmd.Args[1]))
	})
}

// cmdAuth: RFC 5034 with the PLAIN mechanism (RFC 4616).
func (s *session) cmdAuth(ctx context.Context, cmd command) bool {
	if !s.authAllowed() {
		s.reply("-ERR [AUTH] authentication disallowed without TLS")
		return true
	}
	if len(cmd.Args) == 0 {
		// Not in RFC 5034, but common (Thunderbird, Outlook probe it):
		// list the mechanisms.
		s.reply("+OK")
		s.reply("PLAIN")
		s.reply(".")
		return true
	}
	if len(cmd.Args) > 2 {
		s.reply("-ERR usage: AUTH mechanism [initial-response]")
		return true
	}
	if !strings.EqualFold(cmd.Args[0], "PLAIN") {
		s.reply("-ERR unsupported authentication mechanism")
		return true
	}
	s.userName = ""
	var resp string
	if len(cmd.Args) == 2 {
		// RFC 5034 section 4: "=" is an empty initial response.
		resp = cmd.Args[1]
		if resp == "=" {
			resp = ""
		}
	} else {
		s.reply("+ ")
		if s.flush() != nil {
			return false
		}
		s.c.SetReadDeadline(time.Now().Add(s.srv.opts.Timeout))
		line, err := readLine(s.r, maxSASLLine)
		if errors.Is(err, errLineTooLong) {
			s.reply("-ERR line too long")
			return true
		}
		if err != nil {
			return false
		}
		s.srv.trace(s.id, "C", "***")
		if line == "*" {
			s.reply("-ERR authentication cancelled")
			return true
		}
		resp = line
	}
	data, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		s.reply("-ERR invalid base64 data")
		return true
	}
	parts := bytes.Split(data, []byte{0})
	if len(parts) != 3 {
		s.reply("-ERR invalid PLAIN response")
		return true
	}
	authz, authc, pass := string(parts[0]), string(parts[1]), string(parts[2])
	return s.login(ctx, authc, func() (string, error) {
		user, err := s.srv.store.Authenticate(ctx, authc, pass)
		// No proxy authorization: an authzid must name the same user.
		if err == nil && authz != "" && authz != authc && authz != user {
			return "", store.ErrAuthFailed
		}
		return user, err
	})
}

// login runs check of the credentials of username and, when it succeeds,
// locks and opens the maildrop. It returns false when the session must
// end.
func (s *session) login(ctx context.Context, username string, check func() (string, error)) bool {
	user, err := check()
	if err != nil {
		if !errors.Is(err, store.ErrAuthFailed) && !errors.Is(err, store.ErrNoSuchUser) {
			s.logger.Error("pop3: authentication", "err", err)
			s.reply("-ERR [SYS/TEMP] authentication temporarily unavailable")
			return true
		}
		s.failures++
		s.logger.Info("pop3: authentication failed", "username", username, "failures", s.failures)
		if d := s.srv.opts.AuthDelay; d > 0 {
			// Answers to earlier pipelined commands need not wait.
			s.flush()
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false
			}
		}
		if s.failures >= s.srv.opts.MaxFailedLogins {
			s.reply("-ERR [AUTH] too many authentication failures")
			return false
		}
		s.reply("-ERR [AUTH] authentication failed")
		return true
	}
	if !s.srv.lock(user) {
		s.logger.Info("pop3: maildrop locked", "user", user)
		s.reply("-ERR [IN-USE] maildrop already locked")
		return true
	}
	drop, err := openMaildrop(ctx, s.srv.store, user)
	if err != nil {
		s.srv.unlock(user)
		if errors.Is(err, store.ErrNoSuchUser) || errors.Is(err, store.ErrNoSuchFolder) {
			s.logger.Warn("pop3: no maildrop", "user", user, "err", err)
			s.reply("-ERR [SYS/PERM] never heard of mailbox")
			return true
		}
		s.logger.Error("pop3: open maildrop", "user", user, "err", err)
		s.reply("-ERR [SYS/TEMP] unable to open maildrop")
		return true
	}
	s.user, s.drop, s.state = user, drop, stateTransaction
	s.loggedIn.Store(true)
	s.logger.Info("pop3: logged in", "user", user, "messages", len(drop.msgs))
	s.reply("+OK maildrop locked and ready")
	return true
}

// cmdSTLS: RFC 2595 section 4.
func (s *session) cmdSTLS() bool {
	if s.srv.opts.TLSConfig == nil {
		s.reply("-ERR STLS not available")
		return true
	}
	if s.isTLS {
		s.reply("-ERR command not permitted when TLS active")
		return true
	}
	s.reply("+OK Begin TLS negotiation")
	if s.flush() != nil {
		return false
	}
	// Whatever the client pipelined after STLS was sent in clear text and
	// must not be taken as coming from inside TLS (command injection,
	// CVE-2011-0411 and kin): it is dropped with the old reader.
	tc := tls.Server(s.conn, s.srv.opts.TLSConfig)
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.opts.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.logger.Info("pop3: STLS handshake failed", "err", err)
		return false
	}
	s.setConn(tc)
	s.userName = ""
	return true
}

func (s *session) cmdQuit(ctx context.Context) bool {
	if s.state == stateAuthorization {
		s.replyf("+OK %s POP3 server signing off", s.srv.opts.Hostname)
		return false
	}
	s.update(ctx)
	// Unlock before the sign-off line leaves: a client that reconnects
	// at once must not find its maildrop still locked.
	s.release()
	return false
}

// release drops the maildrop and its lock.
func (s *session) release() {
	if s.drop != nil {
		s.srv.unlock(s.user)
		s.drop = nil
	}
}

// redact hides credentials from the protocol trace.
func redact(cmd command, line string) string {
	switch cmd.Name {
	case "PASS":
		return "PASS ***"
	case "AUTH":
		if len(cmd.Args) > 1 {
			return "AUTH " + cmd.Args[0] + " ***"
		}
	case "APOP":
		if len(cmd.Args) > 0 {
			return "APOP " + cmd.Args[0] + " ***"
		}
	}
	return line
}

// redactLine hides what follows the first word of an unparsable line.
func redactLine(line string) string {
	name, _, found := strings.Cut(line, " ")
	if found {
		return strings.ToValidUTF8(name, "?") + " ***"
	}
	return strings.ToValidUTF8(name, "?")
}
