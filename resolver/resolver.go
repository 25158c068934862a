package resolver

import (
	"context"
	"net/netip"
	"time"
)

// Resolver is the DNS interface of mailblocks. Every method returns, besides
// its records, an [Info] about the answer; on error the records are nil and
// Info still carries the TTL of a negative answer when there is one (RFC
// 2308), which is what [NewCache] uses.
//
// Errors are classified with [IsNotFound], [IsNXDomain] and [IsTemporary].
type Resolver interface {
	// LookupMX returns the MX records of domain sorted by preference
	// (lowest first; the order among equal preferences is the server's,
	// randomising it is the caller's job, RFC 5321 5.1). A null MX (RFC
	// 7505) yields an error matching ErrNullMX. A domain without MX records
	// yields an error matching ErrNotFound (and, if the domain does not
	// exist at all, ErrNXDomain): RFC 5321 5.1 falls back to the domain's
	// address records only in the former case.
	LookupMX(ctx context.Context, domain string) ([]MX, Info, error)
	// LookupIP returns the IPv4 (A) and IPv6 (AAAA) addresses of host, IPv6
	// first. When one of the two families fails temporarily and the other
	// has addresses, the addresses are returned without error.
	LookupIP(ctx context.Context, host string) ([]netip.Addr, Info, error)
	// LookupTXT returns the TXT records of name, one string per record, the
	// character-strings of a record concatenated without separator as SPF
	// (RFC 7208 3.3) and DKIM (RFC 6376 3.6.2.2) require.
	LookupTXT(ctx context.Context, name string) ([]string, Info, error)
	// LookupPTR returns the names that ip maps back to (RFC 1035 3.5,
	// RFC 3596 2.5).
	LookupPTR(ctx context.Context, ip netip.Addr) ([]string, Info, error)
	// LookupTLSA returns the TLSA records of _port._proto.host (RFC 6698
	// 3), e.g. LookupTLSA(ctx, 25, "tcp", "mx.example.com"). DANE uses
	// them only when Info.Authentic is set (RFC 7672 2.2).
	LookupTLSA(ctx context.Context, port int, proto, host string) ([]TLSA, Info, error)
}

// Info describes an answer.
type Info struct {
	// Authentic is set when every response that made up the answer
	// (including the steps of a CNAME chain) had the AD bit set (RFC 4035
	// 3.2.3): the recursive server validated it with DNSSEC. It is only as
	// trustworthy as the path to that server.
	Authentic bool
	// TTL is how long the answer may be cached: the smallest TTL of the
	// records used (CNAMEs included) or, for a negative answer, the SOA
	// minimum of RFC 2308 5. Zero means "do not cache".
	TTL time.Duration
}

// MX is a mail exchanger (RFC 1035 3.3.9).
type MX struct {
	// Host is the exchanger's name, lower case, without trailing dot.
	Host string
	// Pref is the preference; lower is tried first.
	Pref uint16
}

// TLSA is a DANE TLSA record (RFC 6698 2.1).
type TLSA struct {
	// Usage is the certificate usage (RFC 6698 2.1.1; RFC 7218 names:
	// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE).
	Usage uint8
	// Selector says what is matched: 0 the full certificate, 1 its
	// SubjectPublicKeyInfo (RFC 6698 2.1.2).
	Selector uint8
	// MatchingType is 0 exact, 1 SHA-256, 2 SHA-512 (RFC 6698 2.1.3).
	MatchingType uint8
	// Data is the certificate association data (binary, not hex).
	Data []byte
}
