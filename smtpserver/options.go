package smtpserver

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/mailblocks/mailblocks"
)

// Options configure a Server. The zero value works: it is an MX that knows
// no local domain (nil Directory), trusts no network and offers no TLS.
// Every limit uses its documented default when zero; a negative value
// disables the limit.
type Options struct {
	// Hostname is the name of this server in the greeting, in EHLO replies
	// and in Received fields. Default: os.Hostname(), or "localhost".
	Hostname string
	// Banner is text put after the hostname in the 220 greeting, which
	// go-smtp ends with "ESMTP Service Ready" (RFC 5321 4.3.1: the greeting
	// starts with the server's name). Default empty.
	Banner string

	// Handler receives accepted messages. Default: a handler that refuses
	// every message with 451 4.3.0 (nothing could be made durable).
	Handler Handler
	// Directory says which recipients are ours. Default nil: no domain is
	// ours, so an MX accepts mail only to relay it for trusted clients.
	Directory Directory
	// Authenticator verifies AUTH PLAIN and LOGIN. Default nil: AUTH is not
	// offered, and Submission listeners cannot be served.
	Authenticator Authenticator
	// Checkers are called in order at connect, MAIL, RCPT and after the
	// header (see Checker). Default none.
	Checkers []Checker

	// TLSConfig enables STARTTLS on MX and Submission listeners and is
	// required by Submissions. Default nil: no TLS.
	TLSConfig *tls.Config
	// AllowInsecureAuth offers AUTH on connections without TLS. Default
	// false: AUTH is offered only over TLS (RFC 4954 4, RFC 8314).
	AllowInsecureAuth bool
	// MXAuth offers AUTH on MX listeners too, so that authenticated users
	// may relay through port 25. Default false, like Postfix, which enables
	// SASL on the submission service only.
	MXAuth bool
	// TrustedNetworks may relay without authenticating (Postfix mynetworks)
	// and are exempt from the per-IP connection and message rate limits
	// (Postfix smtpd_client_event_limit_exceptions). Default none: unlike
	// Postfix, not even the local host is trusted.
	TrustedNetworks []netip.Prefix
	// SenderPolicy says which envelope senders an authenticated user may
	// use. Default SenderOwned.
	SenderPolicy SenderPolicy

	// MaxMessageBytes is the message size limit, advertised with SIZE (RFC
	// 1870); larger messages get 552 5.3.4. Default 25 MiB (Postfix: 10 MB).
	MaxMessageBytes int64
	// MaxHeaderBytes bounds the header block that is read before the
	// handler is called (for loop detection, checks and submission fixes);
	// a larger header gets 552 5.3.4. Default 256 KiB.
	MaxHeaderBytes int
	// MaxRecipients per message; more get 452 4.5.3 (RFC 5321 4.5.3.1.8
	// requires at least 100). Default 100.
	MaxRecipients int
	// MaxHops is the number of Received fields above which a message is
	// refused as looping, 554 5.4.6 (RFC 5321 6.3). Default 50, like
	// Postfix hopcount_limit.
	MaxHops int
	// MaxConnectionsPerIP limits simultaneous connections from one client
	// address (for this and the other per-IP limits, an IPv6 client is its
	// /84 prefix, as in Postfix 3.8); more are answered 421 4.7.0 and closed. Default 50, like
	// Postfix smtpd_client_connection_count_limit.
	MaxConnectionsPerIP int
	// MaxMessagesPerMinute limits transactions (MAIL commands accepted) per
	// client address per minute; past it MAIL gets 421 4.7.0 and the
	// connection is closed. Default 0: no limit, like Postfix
	// smtpd_client_message_rate_limit.
	MaxMessagesPerMinute int
	// MaxErrors is the number of refused commands after which the session
	// is ended with 421 4.7.0. Default 20, like Postfix
	// smtpd_hard_error_limit. (go-smtp itself ends a session after four
	// unrecognised or malformed commands.)
	MaxErrors int
	// MaxLineLength is the longest command or text line accepted, CRLF
	// included; a longer line ends the session with 500 5.4.0. RFC 5321
	// 4.5.3.1.6 requires at least 1000. Default 2000 (go-smtp's default;
	// Postfix line_length_limit is 2048).
	MaxLineLength int

	// CommandTimeout is how long the server waits for a command (RFC 5321
	// 4.5.3.2.7: at least 5 minutes). Default 5 minutes.
	CommandTimeout time.Duration
	// DataTimeout bounds the transfer of a message (DATA or the BDAT
	// chunks): the transfer must end within DataTimeout plus the time to
	// receive its bytes at MinDataRate, so that a client trickling bytes
	// cannot hold a connection forever. Default 10 minutes (RFC 5321
	// 4.5.3.2.5/6).
	DataTimeout time.Duration
	// MinDataRate is the slowest transfer rate in bytes per second that
	// DataTimeout allows for. Default 500, like Postfix
	// smtpd_min_data_rate.
	MinDataRate int
	// WriteTimeout bounds each reply write. Default 5 minutes.
	WriteTimeout time.Duration

	// AuthFailureDelay is the pause after a failed AUTH, multiplied by the
	// number of failures in the session (at most 10 s). Default 1 s, like
	// Postfix smtpd_error_sleep_time.
	AuthFailureDelay time.Duration
	// MaxAuthFailures is the number of failed AUTH attempts from one client
	// address within AuthLockout after which AUTH is refused from that
	// address (454 4.7.0) until the window has passed. Default 10.
	MaxAuthFailures int
	// AuthLockout is the window of MaxAuthFailures. Default 15 minutes.
	AuthLockout time.Duration

	// TempDir is where messages are spooled while BodyCheckers read them.
	// Default os.TempDir().
	TempDir string

	// BareLF says what happens to a message containing a LF not preceded by
	// CR. Default BareLFReject.
	BareLF BareLFPolicy

	// Logger receives the log; every line of a session carries its
	// "session" attribute. Default nil: discard.
	Logger *slog.Logger
	// Trace, when set, is called for each connection and the protocol
	// exchange of the session (after TLS decryption, AUTH credentials and
	// message content included) is copied to the writer it returns (nil: no
	// trace). The writer is closed at the end of the session when it is an
	// io.Closer.
	Trace func(session string, remote net.Addr) io.Writer
	// OnEvent, when set, is called synchronously for every Event (for
	// statistics); it must be fast and safe for concurrent use.
	OnEvent func(Event)
	// Now is the clock of the rate limits, lockouts and headers. Default
	// time.Now.
	Now func() time.Time
}

// SenderPolicy says which envelope senders an authenticated user may use on
// submission (RFC 6409 4.3 lets the MSA enforce this). The null sender <> is
// always allowed (bounces, read receipts).
type SenderPolicy int

const (
	// SenderOwned allows the authenticated identity itself and any address
	// the Directory resolves to it (its aliases). Others get 553 5.7.1.
	SenderOwned SenderPolicy = iota
	// SenderExact allows only the authenticated identity.
	SenderExact
	// SenderSameDomain allows any address in the domain of the
	// authenticated identity.
	SenderSameDomain
	// SenderAny allows any sender.
	SenderAny
)

// BareLFPolicy says what to do with a bare LF in message content.
type BareLFPolicy int

const (
	// BareLFReject refuses the message with 550 5.5.2 (ErrBareLF); the
	// session continues.
	BareLFReject BareLFPolicy = iota
	// BareLFNormalize turns each bare LF into CRLF (what Postfix did before
	// 3.9).
	BareLFNormalize
)

// Errors of this package. The SMTP ones are *mailblocks.Error values sent to
// clients; match them with errors.Is.
var (
	// ErrServerClosed is returned by Serve and ListenAndServe after
	// Shutdown or Close.
	ErrServerClosed = errors.New("smtpserver: server closed")

	// ErrBareLF refuses a message containing a bare LF (RFC 5321 2.3.8).
	ErrBareLF = &mailblocks.Error{Code: 550, Enhanced: mailblocks.EnhancedCode{5, 5, 2}, Message: "Message contains bare LF, which RFC 5321 2.3.8 forbids"}
	// ErrNULByte refuses a message containing a NUL byte.
	ErrNULByte = &mailblocks.Error{Code: 554, Enhanced: mailblocks.EnhancedCode{5, 6, 0}, Message: "Message contains NUL bytes"}
	// ErrHeaderTooBig refuses a message whose header exceeds MaxHeaderBytes.
	ErrHeaderTooBig = mailblocks.ErrMessageTooBig.WithMessage("Message header too large")
	// ErrRoutingNotAllowed refuses source routes and the % ! and quoted @
	// relay tricks (RFC 5321 3.6.1, Postfix allow_untrusted_routing=no).
	ErrRoutingNotAllowed = &mailblocks.Error{Code: 550, Enhanced: mailblocks.EnhancedCode{5, 7, 1}, Message: "Address routing syntax not allowed"}
	// ErrSenderNotOwned refuses a sender the authenticated user may not use.
	ErrSenderNotOwned = &mailblocks.Error{Code: 553, Enhanced: mailblocks.EnhancedCode{5, 7, 1}, Message: "Sender address not owned by the authenticated user"}
	// ErrTooManyConnections refuses a connection over MaxConnectionsPerIP.
	ErrTooManyConnections = &mailblocks.Error{Code: 421, Enhanced: mailblocks.EnhancedCode{4, 7, 0}, Message: "Too many connections from your address"}
	// ErrTooManyErrors ends a session after MaxErrors refusals.
	ErrTooManyErrors = &mailblocks.Error{Code: 421, Enhanced: mailblocks.EnhancedCode{4, 7, 0}, Message: "Too many errors, closing connection"}
	// ErrAuthLocked refuses AUTH from an address with too many failures.
	ErrAuthLocked = &mailblocks.Error{Code: 454, Enhanced: mailblocks.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures, try again later"}
	// ErrTimeout ends a session whose command or data timeout expired.
	ErrTimeout = &mailblocks.Error{Code: 421, Enhanced: mailblocks.EnhancedCode{4, 4, 2}, Message: "Timeout, closing connection"}
	// ErrRequireTLSPlaintext refuses REQUIRETLS on a cleartext session
	// (RFC 8689 4.1).
	ErrRequireTLSPlaintext = &mailblocks.Error{Code: 530, Enhanced: mailblocks.EnhancedCode{5, 7, 10}, Message: "REQUIRETLS needs a TLS session"}
	// ErrLMTPNotLocal refuses a non-local recipient on LMTP.
	ErrLMTPNotLocal = &mailblocks.Error{Code: 550, Enhanced: mailblocks.EnhancedCode{5, 1, 2}, Message: "Not a local domain"}
)

// config is Options with the defaults applied.
type config struct {
	Options
	trusted []netip.Prefix
}

const (
	defaultMaxMessageBytes = 25 << 20
	defaultMaxHeaderBytes  = 256 << 10
	defaultMaxRecipients   = 100
	defaultMaxHops         = 50
	defaultMaxConnsPerIP   = 50
	defaultMaxErrors       = 20
	defaultMaxLineLength   = 2000
	defaultCommandTimeout  = 5 * time.Minute
	defaultDataTimeout     = 10 * time.Minute
	defaultMinDataRate     = 500
	defaultWriteTimeout    = 5 * time.Minute
	defaultAuthDelay       = time.Second
	maxAuthDelay           = 10 * time.Second
	defaultMaxAuthFailures = 10
	defaultAuthLockout     = 15 * time.Minute
)

// pick returns def for 0, 0 for a negative v (disabled), v otherwise.
func pick[T int | int64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func newConfig(o Options, hostname func() (string, error)) *config {
	c := &config{Options: o}
	if c.Hostname == "" {
		if h, err := hostname(); err == nil && h != "" {
			c.Hostname = h
		} else {
			c.Hostname = "localhost"
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.MaxMessageBytes = pick(c.MaxMessageBytes, defaultMaxMessageBytes)
	c.MaxHeaderBytes = pick(c.MaxHeaderBytes, defaultMaxHeaderBytes)
	c.MaxRecipients = pick(c.MaxRecipients, defaultMaxRecipients)
	c.MaxHops = pick(c.MaxHops, defaultMaxHops)
	c.MaxConnectionsPerIP = pick(c.MaxConnectionsPerIP, defaultMaxConnsPerIP)
	c.MaxMessagesPerMinute = pick(c.MaxMessagesPerMinute, 0)
	c.MaxErrors = pick(c.MaxErrors, defaultMaxErrors)
	c.MaxLineLength = pick(c.MaxLineLength, defaultMaxLineLength)
	c.CommandTimeout = pick(c.CommandTimeout, defaultCommandTimeout)
	c.DataTimeout = pick(c.DataTimeout, defaultDataTimeout)
	c.MinDataRate = pick(c.MinDataRate, defaultMinDataRate)
	c.WriteTimeout = pick(c.WriteTimeout, defaultWriteTimeout)
	c.AuthFailureDelay = pick(c.AuthFailureDelay, defaultAuthDelay)
	c.MaxAuthFailures = pick(c.MaxAuthFailures, defaultMaxAuthFailures)
	c.AuthLockout = pick(c.AuthLockout, defaultAuthLockout)
	for _, p := range c.TrustedNetworks {
		c.trusted = append(c.trusted, p.Masked())
	}
	return c
}

// isTrusted reports whether ip is in TrustedNetworks.
func (c *config) isTrusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range c.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
