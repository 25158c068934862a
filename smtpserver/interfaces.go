package smtpserver

import (
	"context"
	"crypto/tls"
	"io"
	"net"

	"github.com/emersion/go-message/textproto"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/store"
)

// Handler receives an accepted message.
//
// Handle is called once per message with the complete envelope and the
// message as it will be stored: the Received header and any header added by
// checkers come first, then the header and body sent by the client, with
// CRLF line endings and dot-stuffing removed.
//
// Every recipient in env passed the server's policy (local, or relaying
// allowed for this client); Handle decides for each of them between local
// delivery and the queue, typically by asking the same Directory again.
//
// Returning nil means the message is durable (in the store or the queue,
// fsync'd): only then does the client get 250. Handle must read body to
// io.EOF before it commits, and must give up (return an error) when a read
// fails: a failed read means the message is incomplete or refused (too big,
// bare LF, client gone). A returned *mailblocks.Error is sent to the client
// as is; any other error is logged and answered with 451 4.3.0.
//
// ctx is cancelled when the server is closed.
type Handler interface {
	Handle(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error

var _ Handler = HandlerFunc(nil)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	return f(ctx, env, body)
}

// LMTPHandler is an optional interface of a Handler, used on LMTP listeners
// to report one status per recipient (RFC 2033 4.2).
type LMTPHandler interface {
	Handler
	// HandleLMTP is like Handle but returns one error per element of
	// env.Recipients, in the same order (nil: delivered). A missing element
	// counts as a temporary failure.
	HandleLMTP(ctx context.Context, env *mailblocks.Envelope, body io.Reader) []error
}

// Directory answers whether an address is ours. store.Directory satisfies
// it.
type Directory interface {
	// LookupRecipient resolves addr. An address in a domain we serve that
	// reaches nobody is Kind LookupUnknown (not an error); a catch-all is
	// the directory's business and shows up as LookupLocal.
	LookupRecipient(ctx context.Context, addr string) (store.Lookup, error)
}

// QuotaChecker is an optional interface of a Directory: when it is
// implemented, an over-quota local recipient is refused at RCPT (552 5.2.2)
// instead of at delivery.
type QuotaChecker interface {
	// CheckQuota returns an error matching mailblocks.ErrMailboxFull when a
	// message of size bytes (0 when unknown) does not fit in the mailbox of
	// user (a canonical address from Lookup.Users).
	CheckQuota(ctx context.Context, user string, size int64) error
}

// Authenticator verifies AUTH credentials. store.Authenticator satisfies it.
type Authenticator interface {
	// Authenticate returns the canonical identity of the user, or an error
	// for bad credentials.
	Authenticate(ctx context.Context, username, password string) (user string, err error)
}

// Mode is the profile of a listener.
type Mode int

const (
	// MX receives mail from the Internet (port 25): no authentication
	// required, mail accepted for our domains, relaying only for
	// authenticated clients (when [Options].MXAuth is set) and trusted
	// networks.
	MX Mode = iota
	// Submission is message submission with STARTTLS (RFC 6409, port 587):
	// AUTH is required before MAIL; Message-ID and Date are added when
	// missing; the sender is checked against the authenticated identity.
	Submission
	// Submissions is Submission over implicit TLS (RFC 8314, port 465).
	Submissions
	// LMTP is local delivery (RFC 2033): every recipient must be local, and
	// the status is given per recipient. No AUTH; only trusted clients
	// should be able to connect.
	LMTP
)

// String returns the mode's name, as used in logs and errors.
func (m Mode) String() string {
	switch m {
	case MX:
		return "mx"
	case Submission:
		return "submission"
	case Submissions:
		return "submissions"
	case LMTP:
		return "lmtp"
	}
	return "invalid"
}

func (m Mode) submission() bool { return m == Submission || m == Submissions }

// ConnInfo describes a client connection to checkers.
type ConnInfo struct {
	// Session is the session ID found on every log line of the connection.
	Session    string
	Mode       Mode
	RemoteAddr net.Addr
	LocalAddr  net.Addr
	// TLS is set for implicit TLS listeners (the handshake has not
	// necessarily happened yet at connect time).
	TLS bool
}

// Checker is a policy check plugged into the server (antispam, filters).
// It implements one or more of ConnectChecker, MailChecker, RcptChecker and
// DataChecker; the server calls the ones it implements, in the order of
// [Options].Checkers, and stops at the first error.
//
// A check rejects by returning a *mailblocks.Error (4xx: temporary, 5xx:
// permanent), sent to the client as is. Any other error is logged and
// answered with 451 4.3.0, so that a broken check delays mail rather than
// losing it.
type Checker interface {
	// Name identifies the check in logs and events.
	Name() string
}

// ConnectChecker is called when a client connects, before the greeting. A
// rejection is sent instead of the 220 greeting and the connection closed
// (RFC 5321 3.1).
type ConnectChecker interface {
	Checker
	CheckConnect(ctx context.Context, c ConnInfo) error
}

// MailChecker is called at MAIL FROM; env holds the sender, the
// connection's details and the MAIL parameters.
type MailChecker interface {
	Checker
	CheckMail(ctx context.Context, env *mailblocks.Envelope) error
}

// RcptChecker is called at RCPT TO for a recipient that passed the relay
// and directory checks; env.Recipients holds the recipients accepted
// before it.
type RcptChecker interface {
	Checker
	CheckRcpt(ctx context.Context, env *mailblocks.Envelope, rcpt mailblocks.Recipient) error
}

// DataChecker is called when the header of the message has been received,
// before the handler. It may return header fields to add on top of the
// message, above the Received field (RFC 8601 5 wants
// Authentication-Results above the trace fields it covers), e.g. an
// Authentication-Results or X-Spam field; they are written in the order of
// textproto.WriteHeader (with go-message, the last field added comes
// first). The header must not be modified.
type DataChecker interface {
	Checker
	CheckData(ctx context.Context, env *mailblocks.Envelope, header textproto.Header) (add textproto.Header, err error)
}

// BodyChecker is called when the whole message has been received, before
// the handler, for checks that need the body (DKIM, content scanning). When
// one is configured the server spools each message to a temporary file in
// [Options].TempDir first. msg is the message as the client sent it (no
// field added yet); it can be read, re-read (ReadAt, Seek) and sized; header
// is its parsed header.
// The fields returned are added like DataChecker's.
type BodyChecker interface {
	Checker
	CheckBody(ctx context.Context, env *mailblocks.Envelope, header textproto.Header, msg *io.SectionReader) (add textproto.Header, err error)
}

// CheckFuncs adapts functions to a Checker implementing all four check
// interfaces; a nil function accepts.
type CheckFuncs struct {
	ID      string
	Connect func(ctx context.Context, c ConnInfo) error
	Mail    func(ctx context.Context, env *mailblocks.Envelope) error
	Rcpt    func(ctx context.Context, env *mailblocks.Envelope, rcpt mailblocks.Recipient) error
	Data    func(ctx context.Context, env *mailblocks.Envelope, header textproto.Header) (textproto.Header, error)
}

var (
	_ ConnectChecker = (*CheckFuncs)(nil)
	_ MailChecker    = (*CheckFuncs)(nil)
	_ RcptChecker    = (*CheckFuncs)(nil)
	_ DataChecker    = (*CheckFuncs)(nil)
)

// Name returns f.ID.
func (f *CheckFuncs) Name() string { return f.ID }

// CheckConnect calls f.Connect.
func (f *CheckFuncs) CheckConnect(ctx context.Context, c ConnInfo) error {
	if f.Connect == nil {
		return nil
	}
	return f.Connect(ctx, c)
}

// CheckMail calls f.Mail.
func (f *CheckFuncs) CheckMail(ctx context.Context, env *mailblocks.Envelope) error {
	if f.Mail == nil {
		return nil
	}
	return f.Mail(ctx, env)
}

// CheckRcpt calls f.Rcpt.
func (f *CheckFuncs) CheckRcpt(ctx context.Context, env *mailblocks.Envelope, rcpt mailblocks.Recipient) error {
	if f.Rcpt == nil {
		return nil
	}
	return f.Rcpt(ctx, env, rcpt)
}

// CheckData calls f.Data.
func (f *CheckFuncs) CheckData(ctx context.Context, env *mailblocks.Envelope, header textproto.Header) (textproto.Header, error) {
	if f.Data == nil {
		return textproto.Header{}, nil
	}
	return f.Data(ctx, env, header)
}

// tlsState returns the state of c when it is a TLS connection.
func tlsState(c net.Conn) *tls.ConnectionState {
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}
