package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Errors returned by this package are usually *Error
// values; they match these sentinels with errors.Is according to their
// Kind. A Resolver implementation (or a test) may also return the bare
// sentinels.
var (
	// ErrNotFound matches permanent "the record does not exist" failures:
	// NXDOMAIN and NODATA (RFC 2308 1, 2.2).
	ErrNotFound = errors.New("resolver: no such record")
	// ErrNXDomain matches NXDOMAIN only: the name does not exist at all
	// (RFC 2308 2.1). It is a special case of ErrNotFound.
	ErrNXDomain = errors.New("resolver: no such domain")
	// ErrNullMX is returned by LookupMX for a domain that publishes a null
	// MX (a single MX "." with preference 0): it explicitly accepts no mail
	// (RFC 7505 3). It is permanent.
	ErrNullMX = errors.New("resolver: domain accepts no mail (null MX)")
	// ErrBadName matches a malformed query name: permanent.
	ErrBadName = errors.New("resolver: malformed name")
	// ErrTemporary matches every temporary failure: SERVFAIL, REFUSED,
	// timeouts, network errors, malformed answers, CNAME loops.
	ErrTemporary = errors.New("resolver: temporary failure")
)

// Kind classifies a DNS failure.
type Kind int

const (
	// KindNXDomain: the name does not exist (RCODE 3). Permanent.
	KindNXDomain Kind = iota + 1
	// KindNoData: the name exists but has no record of the type asked
	// (RFC 2308 2.2). Permanent.
	KindNoData
	// KindNullMX: the domain publishes a null MX (RFC 7505). Permanent.
	KindNullMX
	// KindBadName: the name cannot be queried (empty label, too long, not
	// ASCII). Permanent.
	KindBadName
	// KindServFail: the server failed (RCODE 2), e.g. DNSSEC validation
	// failure or an unreachable authority. Temporary.
	KindServFail
	// KindRefused: the server refused to answer (RCODE 5). Temporary: another
	// server or a later attempt may answer.
	KindRefused
	// KindTimeout: no answer in time. Temporary.
	KindTimeout
	// KindNetwork: the query could not be sent or the answer read.
	// Temporary.
	KindNetwork
	// KindBadResponse: an answer that makes no sense (FORMERR, NOTIMP, an
	// unknown RCODE, a mismatched question). Temporary.
	KindBadResponse
	// KindCNAMELoop: a CNAME chain loops or is too long. Recursive servers
	// answer SERVFAIL for this, and so do we: temporary.
	KindCNAMELoop
)

var kindNames = map[Kind]string{
	KindNXDomain:    "no such domain",
	KindNoData:      "no such record",
	KindNullMX:      "null MX, domain accepts no mail",
	KindBadName:     "malformed name",
	KindServFail:    "server failure",
	KindRefused:     "query refused",
	KindTimeout:     "timeout",
	KindNetwork:     "network error",
	KindBadResponse: "malformed response",
	KindCNAMELoop:   "CNAME loop or chain too long",
}

// String returns a short human description of k.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Temporary reports whether a failure of this kind should be retried.
func (k Kind) Temporary() bool {
	switch k {
	case KindNXDomain, KindNoData, KindNullMX, KindBadName:
		return false
	}
	return true
}

// Error is a classified DNS failure.
type Error struct {
	// Kind says what went wrong and thereby whether it is temporary.
	Kind Kind
	// Type is the record type asked, e.g. "MX".
	Type string
	// Name is the name asked, as given by the caller.
	Name string
	// Server is the server that answered (or failed to), "host:port";
	// empty when no server was involved.
	Server string
	// Err is the underlying cause (a network error, the context's error),
	// or nil.
	Err error
}

// Error formats e as "resolver: MX example.com: no such domain".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("resolver: ")
	if e.Type != "" {
		b.WriteString(e.Type)
		b.WriteByte(' ')
	}
	b.WriteString(e.Name)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Server != "" {
		b.WriteString(" (server ")
		b.WriteString(e.Server)
		b.WriteByte(')')
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure should be retried.
func (e *Error) Temporary() bool { return e.Kind.Temporary() }

// Timeout reports whether the failure was a timeout.
func (e *Error) Timeout() bool { return e.Kind == KindTimeout }

// Is maps e's Kind onto the package's sentinel errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Kind == KindNXDomain || e.Kind == KindNoData
	case ErrNXDomain:
		return e.Kind == KindNXDomain
	case ErrNullMX:
		return e.Kind == KindNullMX
	case ErrBadName:
		return e.Kind == KindBadName
	case ErrTemporary:
		return e.Kind.Temporary()
	}
	return false
}

// IsNotFound reports whether err says that the record does not exist
// (NXDOMAIN or NODATA): a permanent failure.
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrNXDomain)
}

// IsNXDomain reports whether err says that the name does not exist at all.
// RFC 5321 5.1: a domain without MX records but with address records gets
// mail through its implicit MX, a non-existent domain does not.
func IsNXDomain(err error) bool { return errors.Is(err, ErrNXDomain) }

// IsTemporary reports whether err is a failure that may go away: the lookup
// should be retried later rather than the message bounced. Every error that
// is not known to be permanent (not found, null MX, malformed name) counts as
// temporary, including context cancellation and errors of unknown origin.
// IsTemporary(nil) is false.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	return !IsNotFound(err) && !errors.Is(err, ErrNullMX) && !errors.Is(err, ErrBadName)
}

// contextKind classifies a context error.
func contextKind(err error) Kind {
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	return KindNetwork
}
