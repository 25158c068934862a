package smtpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/mailblocks/mailblocks"
)

// Commands named in Error.Command besides the SMTP verbs themselves.
const (
	// CmdConnect is the TCP (and, for implicit TLS, TLS) connection.
	CmdConnect = "connect"
	// CmdGreeting is the server's 220 greeting (RFC 5321 4.3.1).
	CmdGreeting = "greeting"
	// CmdDNS is the MX or address lookup of the destination.
	CmdDNS = "dns"
	// CmdBody is the transfer of the message content after the 354 reply
	// to DATA, up to the final "." (RFC 5321 4.5.3.2.5).
	CmdBody = "message body"
	// CmdEndOfData is the reply to the final "." (RFC 5321 4.5.3.2.6).
	CmdEndOfData = "end of data"
	// CmdLocal is a decision taken locally before or instead of sending a
	// command (SIZE too small, no SMTPUTF8, TLS policy...).
	CmdLocal = "local"
)

// Error is a delivery failure for one recipient: the SMTP-coded reason
// (the remote's reply or a local classification) plus where it happened.
// errors.As finds both *Error and the wrapped *mailblocks.Error:
//
//	var me *mailblocks.Error
//	if errors.As(st.Err, &me) && me.Temporary() { ... }
type Error struct {
	// Reply is the reply code, enhanced code and text. For a remote reply
	// the text is the remote's; an absent enhanced code is filled in as
	// class.0.0 (RFC 3463 3.1) so that a DSN always has a status.
	Reply *mailblocks.Error
	// Command is the command that failed ("MAIL FROM", "RCPT TO", "DATA",
	// "EHLO", "STARTTLS", "AUTH") or one of the Cmd constants.
	Command string
	// RemoteHost is the host that answered or was tried (MX name, smarthost
	// name or address literal), empty for failures before any host was
	// chosen (DNS).
	RemoteHost string
	// Remote is set when Reply is the remote server's own reply rather
	// than a local classification of a network, DNS or policy failure.
	Remote bool
}

// Error formats e as "host: RCPT TO: 550 5.1.1 text".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smtpclient: ")
	if e.RemoteHost != "" {
		b.WriteString(e.RemoteHost)
		b.WriteString(": ")
	}
	if e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	}
	b.WriteString(e.Reply.Error())
	return b.String()
}

// Unwrap returns the *mailblocks.Error.
func (e *Error) Unwrap() error { return e.Reply }

// Temporary reports whether delivery should be retried later.
func (e *Error) Temporary() bool { return e.Reply.Temporary() }

// Local classifications (RFC 3463 codes).
var (
	// errConnect: no connection to the host (4.4.1 "No answer from host").
	errConnect = &mailblocks.Error{Code: 421, Enhanced: mailblocks.EnhancedCode{4, 4, 1}, Message: "Connection to host failed"}
	// errConnLost: the connection broke or timed out (4.4.2 "Bad
	// connection").
	errConnLost = &mailblocks.Error{Code: 421, Enhanced: mailblocks.EnhancedCode{4, 4, 2}, Message: "Connection lost"}
	// errProtocol: a reply that makes no sense at this point (4.5.0).
	errProtocol = &mailblocks.Error{Code: 451, Enhanced: mailblocks.EnhancedCode{4, 5, 0}, Message: "Unexpected reply from remote server"}
	// errDNSTemp: the destination could not be looked up now (4.4.3
	// "Directory server failure").
	errDNSTemp = &mailblocks.Error{Code: 451, Enhanced: mailblocks.EnhancedCode{4, 4, 3}, Message: "Temporary DNS failure"}
	// errNoSuchDomain: the destination domain does not exist (5.1.2 "Bad
	// destination system address").
	errNoSuchDomain = &mailblocks.Error{Code: 550, Enhanced: mailblocks.EnhancedCode{5, 1, 2}, Message: "Destination domain does not exist"}
	// errNullMX: RFC 7505 3.2: the domain accepts no mail (5.1.10).
	errNullMX = &mailblocks.Error{Code: 556, Enhanced: mailblocks.EnhancedCode{5, 1, 10}, Message: "Recipient domain does not accept mail (null MX)"}
	// errTLSRequired: the TLS policy could not be met (4.7.5
	// "Cryptographic failure", as Postfix reports it).
	errTLSRequired = &mailblocks.Error{Code: 451, Enhanced: mailblocks.EnhancedCode{4, 7, 5}, Message: "TLS required but not available"}
	// errRequireTLS: RFC 8689 5: REQUIRETLS could not be honoured (5.7.30).
	errRequireTLS = &mailblocks.Error{Code: 550, Enhanced: mailblocks.EnhancedCode{5, 7, 30}, Message: "REQUIRETLS support required"}
	// errNoRoute: every host was tried without an answer (4.4.4 "Unable
	// to route").
	errNoRoute = &mailblocks.Error{Code: 451, Enhanced: mailblocks.EnhancedCode{4, 4, 4}, Message: "Unable to route"}
	// errAuthLocal: the smarthost credentials cannot be used (4.7.0);
	// temporary, it is a local configuration problem.
	errAuthLocal = &mailblocks.Error{Code: 451, Enhanced: mailblocks.EnhancedCode{4, 7, 0}, Message: "Cannot authenticate to relay"}
	// errBinaryMIME: BODY=BINARYMIME needs BDAT (RFC 3030) which this
	// client does not speak (5.6.3 "Conversion required but not
	// supported").
	errBinaryMIME = &mailblocks.Error{Code: 554, Enhanced: mailblocks.EnhancedCode{5, 6, 3}, Message: "BINARYMIME message cannot be relayed"}
)

// newError builds an *Error from a local classification.
func newError(host, command string, reply *mailblocks.Error) *Error {
	return &Error{Reply: reply, Command: command, RemoteHost: host}
}

// classify turns what go-smtp or the network returned for command into an
// *Error. Remote replies keep their code, enhanced code and text; network
// failures are temporary (4.4.1 when connecting, 4.4.2 afterwards);
// anything unknown is temporary, because bouncing mail on a local fault is
// worse than retrying it.
func classify(host, command string, err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &Error{Reply: fromReply(se.Code, se.EnhancedCode, se.Message), Command: command, RemoteHost: host, Remote: true}
	}
	var me *mailblocks.Error
	if errors.As(err, &me) {
		return newError(host, command, me)
	}
	switch {
	case command == CmdConnect:
		return newError(host, command, errConnect.Wrap(err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newError(host, command, errConnLost.WithMessage("Delivery attempt cancelled or timed out").Wrap(err))
	case isNetError(err):
		return newError(host, command, errConnLost.Wrap(err))
	case isProtocolError(err):
		return newError(host, command, errProtocol.WithMessage("Malformed reply from remote server").Wrap(err))
	}
	return newError(host, command, mailblocks.ErrTemporary.Wrap(err))
}

// isNetError reports whether err is an I/O failure of the connection.
func isNetError(err error) bool {
	var ne net.Error
	var re tls.RecordHeaderError
	var ae tls.AlertError
	var ve *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &re) || errors.As(err, &ae) ||
		errors.As(err, &ve) || errors.As(err, &ue)
}

// isProtocolError reports whether err is a reply that could not be parsed.
func isProtocolError(err error) bool {
	var pe textproto.ProtocolError
	return errors.As(err, &pe)
}

// fromReply converts a remote reply. A code outside 4xx/5xx where an error
// was expected (a 250 to DATA, a 354 to RCPT) is a protocol error: treated
// as temporary, with the remote text kept.
func fromReply(code int, enh smtp.EnhancedCode, msg string) *mailblocks.Error {
	msg = strings.ReplaceAll(msg, "\n", " ")
	if code < 400 || code > 599 {
		return errProtocol.WithMessage(fmt.Sprintf("Unexpected reply %d: %s", code, msg))
	}
	e := &mailblocks.Error{Code: code, Message: msg}
	class := code / 100
	if enh[0] == class && enh[1] >= 0 && enh[2] >= 0 {
		e.Enhanced = mailblocks.EnhancedCode{enh[0], enh[1], enh[2]}
	} else {
		// RFC 3463 3.1: class.0.0 when nothing more precise is known; an
		// enhanced code whose class contradicts the reply code is
		// ignored, the reply code decides (RFC 3463 2).
		e.Enhanced = mailblocks.EnhancedCode{class, 0, 0}
	}
	return e
}

// combine chooses the error to report for a domain after several hosts
// failed: permanent only when every host failed permanently (a later
// attempt may reach a host that answered temporarily), otherwise the last
// temporary error, which says most about the most recent attempt.
func combine(errs []*Error) *Error {
	var lastTemp, last *Error
	for _, e := range errs {
		last = e
		if e.Temporary() {
			lastTemp = e
		}
	}
	if lastTemp != nil {
		return lastTemp
	}
	return last
}

// withCtx attributes a network failure to the context when the context
// ended the session (its AfterFunc closed the socket), so that the error
// says "cancelled" rather than "use of closed network connection".
func withCtx(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("%w: %w", context.Cause(ctx), err)
}
