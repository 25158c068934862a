package imapbackend

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailblocks/mailblocks/store"
)

// Store is what the backend needs of a mailbox system: checking passwords
// and opening users' mailboxes. A store.Store satisfies it.
type Store interface {
	store.Authenticator
	store.Mailboxes
}

// Options configures a Backend and the server NewServer builds. The zero
// value works: plaintext login refused, no TLS, nothing logged.
type Options struct {
	// TLSConfig enables STARTTLS, and implicit TLS when the server is
	// started with ListenAndServeTLS or serves a tls.Listener. Nil means
	// no STARTTLS.
	TLSConfig *tls.Config
	// InsecureAuth allows LOGIN and AUTHENTICATE over a connection that is
	// not TLS-protected. Default false: clients must use TLS first, and
	// LOGINDISABLED is advertised (RFC 3501 6.2.3).
	InsecureAuth bool
	// Logger receives session events and internal errors; nil discards.
	Logger *slog.Logger
	// DebugWriter, when set, receives the raw protocol trace of every
	// connection, credentials included. Default nil: no trace.
	DebugWriter io.Writer
	// AppendLimit is the largest message APPEND accepts, in bytes,
	// advertised as APPENDLIMIT=n (RFC 7889). Zero means 50 MiB. Quotas
	// are enforced by the store on top of it.
	AppendLimit uint32
	// PollInterval is how stale a session's view of its selected folder
	// may get when no change event arrives, e.g. because another program
	// changed a maildir: commands and IDLE rescan the folder when an event
	// says it changed, and at the latest this often. Zero means 30 s.
	PollInterval time.Duration
	// AuthFailureDelay slows down failed logins to make password guessing
	// expensive. Zero means 2 s; a negative value disables the delay.
	AuthFailureDelay time.Duration
	// CacheSize bounds how many parsed messages (envelope, body structure,
	// header) are cached across sessions. Zero means 20000; negative
	// disables the cache.
	CacheSize int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

const (
	defaultAppendLimit      = 50 << 20
	defaultPollInterval     = 30 * time.Second
	defaultAuthFailureDelay = 2 * time.Second
	defaultCacheSize        = 20000
)

// Backend creates IMAP sessions over a Store. It is safe for concurrent use
// by the connections of one or more servers.
type Backend struct {
	st    Store
	opts  Options
	log   *slog.Logger
	cache *msgCache
}

// New returns a Backend serving the mailboxes of st.
func New(st Store, opts Options) *Backend {
	if opts.AppendLimit == 0 {
		opts.AppendLimit = defaultAppendLimit
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPollInterval
	}
	if opts.AuthFailureDelay == 0 {
		opts.AuthFailureDelay = defaultAuthFailureDelay
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = defaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{st: st, opts: opts, log: log, cache: newMsgCache(opts.CacheSize)}
}

// Caps returns the capabilities the sessions of b implement, for
// imapserver.Options.Caps. The IMAP4rev1 extensions that need no backend
// support (IDLE, UNSELECT, ENABLE, UTF8=ACCEPT, SASL-IR, LITERAL-) and
// APPENDLIMIT=n are added by go-imap itself.
func (b *Backend) Caps() imap.CapSet {
	caps := imap.CapSet{}
	for _, c := range []imap.Cap{
		imap.CapIMAP4rev1, imap.CapIMAP4rev2,
		imap.CapNamespace, imap.CapUIDPlus, imap.CapESearch, imap.CapSearchRes,
		imap.CapListExtended, imap.CapListStatus, imap.CapMove, imap.CapStatusSize,
		imap.CapBinary, imap.CapChildren, imap.CapSpecialUse, imap.CapCreateSpecialUse,
		// Not LITERAL+ (RFC 7888): when go-imap refuses a non-synchronising
		// literal (over APPENDLIMIT, or over 4096 bytes in other commands) it
		// answers NO/BAD but does not consume the literal, so its bytes
		// would be read as commands. With only LITERAL- (advertised by
		// go-imap), a compliant client sends non-synchronising literals of
		// at most 4096 bytes, which are never refused; larger ones are
		// synchronising and refused before the client sends them. A
		// message a client appends can thus never be run as commands.
	} {
		caps[c] = struct{}{}
	}
	return caps
}

// NewSession implements imapserver.Options.NewSession: one session per
// connection.
func (b *Backend) NewSession(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ctx, cancel := context.WithCancel(context.Background())
	remote := ""
	if nc := conn.NetConn(); nc != nil && nc.RemoteAddr() != nil {
		remote = nc.RemoteAddr().String()
	}
	s := &session{
		b:      b,
		conn:   conn,
		ctx:    ctx,
		cancel: cancel,
		log:    b.log.With("remote", remote),
		wake:   make(chan struct{}, 1),
	}
	return s, nil, nil
}

// ServerOptions returns go-imap server options that serve b: its
// sessions, capabilities, TLS settings, logger and trace writer. Adjust
// them before imapserver.New when NewServer does not fit.
func (b *Backend) ServerOptions() *imapserver.Options {
	return &imapserver.Options{
		NewSession:   b.NewSession,
		Caps:         b.Caps(),
		Logger:       printfLogger{b.log},
		TLSConfig:    b.opts.TLSConfig,
		InsecureAuth: b.opts.InsecureAuth,
		DebugWriter:  b.opts.DebugWriter,
	}
}

// NewServer returns a go-imap server serving st (New(st,
// opts).ServerOptions()). Serve it with Serve(ln), ListenAndServe or
// ListenAndServeTLS (implicit TLS, "993 style"); stop it with Close.
func NewServer(st Store, opts Options) *imapserver.Server {
	return imapserver.New(New(st, opts).ServerOptions())
}

// printfLogger adapts slog to go-imap's Printf logger, which only reports
// connection-level failures.
type printfLogger struct{ log *slog.Logger }

func (l printfLogger) Printf(format string, args ...any) {
	l.log.Warn("imapbackend: " + fmt.Sprintf(format, args...))
}
