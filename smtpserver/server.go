package smtpserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

// Server is an SMTP/LMTP server. Create it with New; one Server serves any
// number of listeners, each in its own Mode, sharing the handler, the
// directory, the authenticator, the checkers and the per-IP limits.
type Server struct {
	cfg     *config
	limiter *limiter

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup // one per connection
	shutdown  atomic.Bool
}

// New returns a Server configured by opts.
func New(opts Options) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := newConfig(opts, os.Hostname)
	return &Server{
		cfg:       cfg,
		limiter:   newLimiter(cfg.AuthLockout),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[*net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
}

// Endpoint is one listener of ListenAndServe.
type Endpoint struct {
	// Network is "tcp" (default) or "unix".
	Network string
	// Addr is the address to listen on, e.g. ":25".
	Addr string
	Mode Mode
}

// ListenAndServe listens on each endpoint and serves it until Shutdown or
// Close, then returns ErrServerClosed. If a listener fails, the others are
// closed and the error returned.
func (s *Server) ListenAndServe(endpoints ...Endpoint) error {
	if len(endpoints) == 0 {
		return errors.New("smtpserver: no endpoint to listen on")
	}
	var ls []net.Listener
	for _, ep := range endpoints {
		network := ep.Network
		if network == "" {
			network = "tcp"
		}
		l, err := net.Listen(network, ep.Addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("smtpserver: listen %s: %w", ep.Addr, err)
		}
		ls = append(ls, l)
	}
	errc := make(chan error, len(ls))
	for i, l := range ls {
		go func() { errc <- s.Serve(l, endpoints[i].Mode) }()
	}
	err := <-errc
	if !errors.Is(err, ErrServerClosed) {
		for _, l := range ls {
			l.Close()
		}
	}
	for range len(ls) - 1 {
		<-errc
	}
	return err
}

// Serve accepts connections on l and serves them in the given mode until
// Shutdown or Close, after which it returns ErrServerClosed. For
// Submissions, l is a plain listener: the server does the TLS handshake.
func (s *Server) Serve(l net.Listener, mode Mode) error {
	if err := s.check(mode); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[&l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &l)
		s.mu.Unlock()
	}()

	var delay time.Duration // backoff after temporary accept errors, as net/http
	for {
		raw, err := l.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn("accept error, retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-s.ctx.Done():
					return ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("smtpserver: accept: %w", err)
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(raw, mode)
		}()
	}
}

func (s *Server) check(mode Mode) error {
	switch mode {
	case MX, LMTP:
	case Submission, Submissions:
		if s.cfg.Authenticator == nil {
			return fmt.Errorf("smtpserver: %s needs an Authenticator", mode)
		}
		if s.cfg.TLSConfig == nil && (mode == Submissions || !s.cfg.AllowInsecureAuth) {
			return fmt.Errorf("smtpserver: %s needs a TLSConfig", mode)
		}
	default:
		return fmt.Errorf("smtpserver: invalid mode %d", mode)
	}
	return nil
}

// Shutdown stops accepting connections, ends idle sessions with 421 4.3.2,
// lets the transactions in progress finish, and waits for every session to
// end or ctx to be done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		(*l).Close()
	}
	for c := range s.conns {
		c.interrupt()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, and cancels the
// context of running handlers.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	defer s.cancel() // after the connections are closed, so that nothing more is written
	s.mu.Lock()
	s.closed = true
	var err error
	for l := range s.listeners {
		if e := (*l).Close(); e != nil && err == nil {
			err = e
		}
	}
	for c := range s.conns {
		c.Conn.Close()
	}
	s.mu.Unlock()
	return err
}

// serveConn runs one connection from accept to close.
func (s *Server) serveConn(raw net.Conn, mode Mode) {
	cfg := s.cfg
	id := newID()
	ip := addrIP(raw.RemoteAddr())
	log := cfg.Logger.With("session", id, "remote", raw.RemoteAddr().String(), "mode", mode.String())
	trusted := ip.IsValid() && cfg.isTrusted(ip)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	c := &conn{Conn: raw, srv: s, id: id, ip: ip, mode: mode, log: log, trusted: trusted, ctx: ctx}
	var nc net.Conn = c
	if mode == Submissions {
		nc = tls.Server(c, cfg.TLSConfig)
	}

	// Per-IP connection limit; trusted networks are exempt like Postfix
	// smtpd_client_event_limit_exceptions.
	if ip.IsValid() && !trusted {
		if !s.limiter.connect(ip, cfg.MaxConnectionsPerIP) {
			s.refuse(c, nc, ErrTooManyConnections, "")
			return
		}
		defer s.limiter.disconnect(ip)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		raw.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()

	info := ConnInfo{Session: id, Mode: mode, RemoteAddr: raw.RemoteAddr(), LocalAddr: raw.LocalAddr(), TLS: mode == Submissions}
	for _, ck := range cfg.Checkers {
		cc, ok := ck.(ConnectChecker)
		if !ok {
			continue
		}
		if err := cc.CheckConnect(ctx, info); err != nil {
			s.refuse(c, nc, err, ck.Name())
			return
		}
	}

	ss := smtp.NewServer(smtp.BackendFunc(func(sc *smtp.Conn) (smtp.Session, error) {
		return c.newSession(sc)
	}))
	ss.Domain = cfg.Hostname
	if cfg.Banner != "" {
		ss.Domain += " " + cfg.Banner
	}
	ss.LMTP = mode == LMTP
	if mode != Submissions && mode != LMTP {
		ss.TLSConfig = cfg.TLSConfig
	}
	ss.MaxRecipients = cfg.MaxRecipients
	ss.MaxMessageBytes = cfg.MaxMessageBytes
	ss.MaxLineLength = cfg.MaxLineLength
	ss.AllowInsecureAuth = cfg.AllowInsecureAuth
	ss.WriteTimeout = cfg.WriteTimeout
	ss.ReadTimeout = 0 // conn.Read sets the deadlines
	ss.EnableSMTPUTF8 = true
	ss.EnableREQUIRETLS = true // go-smtp advertises it only over TLS
	ss.EnableDSN = true
	ss.ErrorLog = slogLogger{log}
	if cfg.Trace != nil {
		if w := cfg.Trace(id, raw.RemoteAddr()); w != nil {
			ss.Debug = w
			if cl, ok := w.(io.Closer); ok {
				defer cl.Close()
			}
		}
	}

	log.Debug("connected")
	s.event(Event{Kind: EventConnect, Session: id, Mode: mode, RemoteAddr: raw.RemoteAddr(), Stage: "connect"})
	l := &oneConnListener{c: nc, done: make(chan struct{})}
	c.onClose = l.close
	ss.Serve(l)                       // returns once the connection is closed
	ss.Shutdown(context.Background()) // waits for go-smtp's connection goroutine
	// A BDAT handler may still run in go-smtp's data goroutine; its reply
	// can no longer be sent: stop it, and wait so that Shutdown and the
	// server's WaitGroup cover it.
	cancel()
	c.waitData()
	log.Debug("disconnected")
	s.event(Event{Kind: EventDisconnect, Session: id, Mode: mode, RemoteAddr: raw.RemoteAddr()})
}

// refuse answers a connection with err instead of the greeting and closes
// it (RFC 5321 3.1 allows 554 in place of 220; 421 is "try later").
func (s *Server) refuse(c *conn, nc net.Conn, err error, checker string) {
	defer nc.Close()
	se := c.reply("connect", checker, err, nil, true)
	c.closeAfterWrite.Store(false) // we close ourselves; TLS needs several writes
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "%d %d.%d.%d %s\r\n", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
}

func (s *Server) event(e Event) {
	if s.cfg.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	s.cfg.OnEvent(e)
}

// oneConnListener hands one connection to a go-smtp Server, then blocks
// until the connection is closed. A go-smtp Server per connection lets each
// session have its own logger and trace writer.
type oneConnListener struct {
	c    net.Conn
	once sync.Once
	took atomic.Bool
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.took.Swap(true) {
		return l.c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) close() { l.once.Do(func() { close(l.done) }) }
func (l *oneConnListener) Close() error {
	l.close()
	return nil
}
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// slogLogger adapts slog to go-smtp's Logger.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.log.Warn(fmt.Sprint(v...)) }

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns a random identifier for sessions and messages.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// addrIP returns the IP of a TCP address, or the zero Addr (unix sockets).
func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
