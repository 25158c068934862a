// Package resolver is DNS for mail: the lookups a mail system makes (MX,
// A/AAAA, TXT, PTR, TLSA) behind a small context-first [Resolver]
// interface, with answers that say whether they were DNSSEC-authenticated
// and failures classified the way mail code must act on them.
//
// The classification is the point of the package. A permanent failure
// (NXDOMAIN, "no such record", a null MX) means a message can be bounced; a
// temporary failure (SERVFAIL, REFUSED, a timeout, a network error) means it
// must be retried later. Use [IsNotFound], [IsNXDomain] and [IsTemporary]
// rather than inspecting error texts; when in doubt an error is temporary,
// because losing mail to a transient DNS fault is worse than retrying.
//
// Implementations:
//
//   - [New] returns a stub resolver on github.com/miekg/dns that asks the
//     configured recursive servers (by default those of /etc/resolv.conf):
//     UDP with EDNS0 and the DO bit (RFC 6891, RFC 3225) so that the AD bit
//     of the answer is meaningful (RFC 4035 3.2.3), TCP fallback on
//     truncation (RFC 7766), retries across servers, CNAME chains followed
//     with loop detection (RFC 1034 3.6.2).
//   - [NewCache] wraps any Resolver with a bounded, TTL-respecting cache that
//     also caches negative answers (RFC 2308) and coalesces identical
//     in-flight queries.
//   - [Mock] is a static, map-driven Resolver for tests.
//   - [NetResolver] adapts any Resolver to the methods and *net.DNSError
//     conventions of *net.Resolver, for libraries that expect them (SPF,
//     DKIM).
//
// The sub-package resolver/dnstest is a small authoritative DNS server on
// loopback for tests that must exercise DNS over the wire.
//
// Names are accepted with or without the trailing dot and in any case; names
// in results (MX hosts, PTR names, CNAME targets) are returned in lower case
// without the trailing dot. Names in U-labels are converted to A-labels
// (RFC 5891 5, with mailblocks.NormalizeDomain) before they are queried.
package resolver
