package mailblocks

import (
	"crypto/tls"
	"net"
	"time"
)

// BodyType is the value of the ESMTP BODY parameter (RFC 6152, RFC 3030).
type BodyType string

const (
	Body7Bit       BodyType = "7BIT"
	Body8BitMIME   BodyType = "8BITMIME"
	BodyBinaryMIME BodyType = "BINARYMIME"
)

// DSNReturn is the value of the DSN RET parameter (RFC 3461 4.3).
type DSNReturn string

const (
	ReturnFull    DSNReturn = "FULL"
	ReturnHeaders DSNReturn = "HDRS"
)

// DSNNotify is one value of the DSN NOTIFY parameter (RFC 3461 4.1).
type DSNNotify string

const (
	NotifyNever   DSNNotify = "NEVER"
	NotifySuccess DSNNotify = "SUCCESS"
	NotifyFailure DSNNotify = "FAILURE"
	NotifyDelay   DSNNotify = "DELAY"
)

// Recipient is one forward-path of an SMTP transaction with its DSN
// parameters.
type Recipient struct {
	// Address is the recipient address as given in RCPT TO, without angle
	// brackets.
	Address string
	// Notify holds the NOTIFY values; nil means the client sent none, in
	// which case RFC 3461 4.1 says to behave as if FAILURE (and optionally
	// DELAY) had been requested.
	Notify []DSNNotify
	// OriginalRecipient is the ORCPT parameter (RFC 3461 4.2) in its
	// "addr-type;address" form, or empty.
	OriginalRecipient string
}

// Wants reports whether a notification of kind n was asked for this
// recipient, applying the RFC 3461 4.1 default (FAILURE and DELAY) when the
// client sent no NOTIFY parameter.
func (r Recipient) Wants(n DSNNotify) bool {
	if r.Notify == nil {
		return n == NotifyFailure || n == NotifyDelay
	}
	for _, v := range r.Notify {
		if v == n {
			return true
		}
	}
	return false
}

// Envelope is what an SMTP transaction knew about a message besides its
// content: the reverse-path, the forward-paths and the circumstances of the
// transaction. It travels with the message from smtpserver to the store or
// the queue and on to smtpclient.
type Envelope struct {
	// ID identifies the message inside this system (logs, queue, Received
	// header). It is assigned by whoever accepts the message first.
	ID string
	// From is the reverse-path without angle brackets; empty for the null
	// sender <> used by bounces (RFC 5321 4.5.5).
	From string
	// Recipients are the forward-paths, in the order they were accepted.
	Recipients []Recipient

	// RemoteAddr is the client's network address, nil for local submission.
	RemoteAddr net.Addr
	// Helo is the name the client gave in HELO/EHLO/LHLO.
	Helo string
	// AuthUser is the authenticated identity, empty when the client did not
	// authenticate.
	AuthUser string
	// TLS is the state of the connection's TLS layer, nil for cleartext.
	TLS *tls.ConnectionState
	// Received is when the message was accepted.
	Received time.Time

	// Size is the SIZE parameter declared in MAIL FROM (RFC 1870), 0 when
	// absent.
	Size int64
	// Body is the BODY parameter; empty means 7BIT.
	Body BodyType
	// SMTPUTF8 is set when the client used the SMTPUTF8 parameter (RFC 6531).
	SMTPUTF8 bool
	// RequireTLS is the REQUIRETLS parameter (RFC 8689).
	RequireTLS bool
	// Return is the DSN RET parameter, empty when absent.
	Return DSNReturn
	// EnvelopeID is the DSN ENVID parameter, empty when absent.
	EnvelopeID string
}

// Clone returns a deep copy of e, so that one recipient list can be edited
// without touching the other. The TLS state is shared (it is read-only).
func (e *Envelope) Clone() *Envelope {
	c := *e
	c.Recipients = make([]Recipient, len(e.Recipients))
	for i, r := range e.Recipients {
		r.Notify = append([]DSNNotify(nil), r.Notify...)
		if e.Recipients[i].Notify == nil {
			r.Notify = nil
		}
		c.Recipients[i] = r
	}
	return &c
}
