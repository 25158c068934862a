package mailblocks

import (
	"errors"
	"fmt"
)

// EnhancedCode is an RFC 3463 enhanced status code, class.subject.detail.
type EnhancedCode [3]int

// String formats c as "5.1.1".
func (c EnhancedCode) String() string {
	return fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
}

// IsZero reports whether c is unset.
func (c EnhancedCode) IsZero() bool { return c == EnhancedCode{} }

// Error is a failure with SMTP meaning: a reply code (RFC 5321 4.2), an
// enhanced status code (RFC 3463) and a text safe to show to the remote
// side. It may wrap an internal cause, which is never sent over the wire.
//
// Match it with errors.As:
//
//	var se *mailblocks.Error
//	if errors.As(err, &se) && se.Temporary() { ... }
type Error struct {
	Code     int
	Enhanced EnhancedCode
	Message  string
	// Err is the internal cause, if any; it is logged, not sent.
	Err error
}

// Error formats the reply as it would appear on the wire, followed by the
// cause when there is one.
func (e *Error) Error() string {
	s := fmt.Sprintf("%d", e.Code)
	if !e.Enhanced.IsZero() {
		s += " " + e.Enhanced.String()
	}
	if e.Message != "" {
		s += " " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure is transient (a 4xx reply): the
// message should be retried later rather than bounced.
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Is makes errors.Is(err, ErrXxx) match any *Error with the same code and
// enhanced code, so that a well-known value with a more precise message or a
// wrapped cause still matches.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return e.Code == t.Code && e.Enhanced == t.Enhanced
}

// WithMessage returns a copy of e with another text.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// Wrap returns a copy of e that wraps cause.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// NewError returns an *Error with the given codes and message.
func NewError(code int, enhanced EnhancedCode, format string, args ...any) *Error {
	return &Error{Code: code, Enhanced: enhanced, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error when it is one (or wraps one). Otherwise
// it returns ErrTemporary wrapping err: an error that carries no SMTP meaning
// is answered with a generic temporary failure and its text is not shown to
// the client (ARCHITECTURE.md rule 5). AsError(nil) is nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return ErrTemporary.Wrap(err)
}

// IsTemporary reports whether err should lead to a retry rather than a
// bounce. An error that carries no SMTP code is treated as temporary: losing
// mail to a local fault is worse than retrying it.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	return AsError(err).Temporary()
}

// Well-known replies. Use WithMessage or Wrap to specialise them; errors.Is
// matches on the codes.
var (
	// ErrTemporary is the generic transient local failure (RFC 3463 4.3.0).
	ErrTemporary = &Error{Code: 451, Enhanced: EnhancedCode{4, 3, 0}, Message: "Temporary local problem, please try again later"}
	// ErrNoSuchUser: unknown local mailbox (RFC 3463 5.1.1).
	ErrNoSuchUser = &Error{Code: 550, Enhanced: EnhancedCode{5, 1, 1}, Message: "No such user here"}
	// ErrBadDestinationSyntax: malformed recipient address (5.1.3).
	ErrBadDestinationSyntax = &Error{Code: 501, Enhanced: EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	// ErrBadSenderSyntax: malformed sender address (5.1.7).
	ErrBadSenderSyntax = &Error{Code: 501, Enhanced: EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	// ErrRelayDenied: relaying to a foreign domain is not allowed (5.7.1).
	ErrRelayDenied = &Error{Code: 554, Enhanced: EnhancedCode{5, 7, 1}, Message: "Relay access denied"}
	// ErrMailboxFull: the recipient is over quota (RFC 3463 5.2.2).
	ErrMailboxFull = &Error{Code: 552, Enhanced: EnhancedCode{5, 2, 2}, Message: "Mailbox full"}
	// ErrMessageTooBig: the message exceeds the size limit (5.3.4).
	ErrMessageTooBig = &Error{Code: 552, Enhanced: EnhancedCode{5, 3, 4}, Message: "Message size exceeds fixed maximum message size"}
	// ErrTooManyRecipients: recipient limit reached (RFC 5321 4.5.3.1.10, 4.5.3).
	ErrTooManyRecipients = &Error{Code: 452, Enhanced: EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
	// ErrLoopDetected: too many Received headers (5.4.6).
	ErrLoopDetected = &Error{Code: 554, Enhanced: EnhancedCode{5, 4, 6}, Message: "Too many hops, mail loop detected"}
	// ErrAuthRequired: authentication is required first (RFC 4954, 5.7.0).
	ErrAuthRequired = &Error{Code: 530, Enhanced: EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	// ErrAuthFailed: bad credentials (RFC 4954, 5.7.8).
	ErrAuthFailed = &Error{Code: 535, Enhanced: EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	// ErrRateLimited: the client sends too fast (4.7.0).
	ErrRateLimited = &Error{Code: 421, Enhanced: EnhancedCode{4, 7, 0}, Message: "Too many messages, slow down"}
	// ErrNeedsSMTPUTF8: the message needs SMTPUTF8 which the peer lacks
	// (RFC 6531 3.4, 5.6.7).
	ErrNeedsSMTPUTF8 = &Error{Code: 553, Enhanced: EnhancedCode{5, 6, 7}, Message: "SMTPUTF8 required but not supported"}
)
