package smtpclient

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/mailblocks/mailblocks/resolver"
)

// Resolver is the part of resolver.Resolver this package uses;
// *resolver.Client, the cache and resolver.Mock satisfy it.
type Resolver interface {
	// LookupMX returns the MX records of domain sorted by preference;
	// errors are classified with resolver.IsNotFound, resolver.IsNXDomain
	// and errors.Is(err, resolver.ErrNullMX).
	LookupMX(ctx context.Context, domain string) ([]resolver.MX, resolver.Info, error)
	// LookupIP returns the IPv6 and IPv4 addresses of host.
	LookupIP(ctx context.Context, host string) ([]netip.Addr, resolver.Info, error)
}

// Dialer opens TCP connections; *net.Dialer satisfies it. Tests and
// embedders use it to bind a source address, go through a proxy or map
// hosts to listeners.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// TLSPolicy says how hard to insist on TLS towards a destination.
type TLSPolicy int

const (
	// TLSOpportunistic (the default) uses STARTTLS when the server offers
	// it, without verifying the certificate, and otherwise sends in clear
	// text: Postfix's "may" level (RFC 3207 4, RFC 7435). When the
	// STARTTLS command or the TLS handshake fails, the same address is
	// tried again in clear text on a new connection, as Postfix does:
	// refusing would only make mail undeliverable to servers with broken
	// TLS, and an active attacker can strip STARTTLS anyway.
	TLSOpportunistic TLSPolicy = iota
	// TLSVerify requires STARTTLS and a certificate that verifies against
	// Options.TLSConfig.RootCAs (the system roots when nil) for the MX
	// host name: Postfix's "secure"/"verify" levels. When a host cannot
	// provide it, the next MX is tried; when none can, delivery fails
	// temporarily with 4.7.5 so that the message waits in the queue.
	TLSVerify
	// TLSNone never uses STARTTLS: for peers whose TLS is known broken.
	TLSNone
)

// SmarthostTLS says how to secure the connection to the smarthost.
type SmarthostTLS int

const (
	// SmarthostSTARTTLS (the default) requires STARTTLS on the smarthost
	// port with a verified certificate (RFC 3207); credentials are never
	// sent in clear text.
	SmarthostSTARTTLS SmarthostTLS = iota
	// SmarthostImplicitTLS connects with TLS from the first byte, as on
	// port 465 (RFC 8314 3.3), verifying the certificate.
	SmarthostImplicitTLS
	// SmarthostNoTLS talks clear text (a relay on loopback or a trusted
	// network). Auth is refused in this mode (4.7.0): credentials never
	// travel in clear text.
	SmarthostNoTLS
)

// Timeouts bound each step of a delivery. RFC 5321 4.5.3.2 gives the
// minimum values a client should wait; they are the defaults.
type Timeouts struct {
	// Connect bounds the TCP connection (and the TLS handshake of implicit
	// TLS). RFC 5321 does not fix it; default 30 s, as Postfix's
	// smtp_connect_timeout.
	Connect time.Duration
	// Greeting bounds the wait for the 220 greeting (RFC 5321 4.5.3.2.1:
	// 5 min) and for the replies to EHLO, STARTTLS and AUTH. Default 5 min.
	Greeting time.Duration
	// Mail bounds the reply to MAIL FROM (4.5.3.2.2: 5 min). Default 5 min.
	Mail time.Duration
	// Rcpt bounds the reply to each RCPT TO (4.5.3.2.3: 5 min). Default
	// 5 min.
	Rcpt time.Duration
	// DataInit bounds the 354 reply to DATA (4.5.3.2.4: 2 min). Default
	// 2 min.
	DataInit time.Duration
	// DataBlock bounds each write of the message content (4.5.3.2.5:
	// 3 min). Default 3 min.
	DataBlock time.Duration
	// DataTermination bounds the reply to the final "." (4.5.3.2.6:
	// 10 min). Default 10 min.
	DataTermination time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Mail, 5*time.Minute)
	def(&t.Rcpt, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataTermination, 10*time.Minute)
	return t
}

// Auth holds smarthost credentials for SASL PLAIN (RFC 4616) or LOGIN.
type Auth struct {
	// Username and Password are the credentials.
	Username, Password string
	// Identity is the PLAIN authorization identity; empty (the usual
	// case) means the same as Username.
	Identity string
	// Mechanism is "PLAIN" or "LOGIN"; empty means PLAIN when the server
	// offers it, else LOGIN.
	Mechanism string
}

// Options configure a Client. The zero value delivers directly to MX hosts
// on port 25 with opportunistic STARTTLS, using a resolver on the system's
// configured DNS servers.
type Options struct {
	// Hostname is the name given in EHLO/HELO (RFC 5321 4.1.1.1); it
	// should be this host's FQDN with matching reverse DNS. Default: the
	// operating system's host name, or "localhost" if unknown.
	Hostname string
	// Resolver looks up MX and address records. Default: resolver.New
	// with its defaults (the servers of /etc/resolv.conf). Unused in
	// smarthost mode and for address literals.
	Resolver Resolver
	// Dialer opens connections. Default: a net.Dialer (the connect
	// timeout is applied through the context).
	Dialer Dialer
	// Port is the TCP port of MX hosts and address literals. Default 25.
	Port int
	// TLSConfig is the base TLS configuration: RootCAs, client
	// certificates, minimum version. Default: the system roots. ServerName
	// is set per host; InsecureSkipVerify is managed by the policy.
	TLSConfig *tls.Config
	// Policy returns the TLS policy for a recipient domain (in the form of
	// mailblocks.NormalizeDomain: lower case, A-labels).
	// Default: TLSOpportunistic for every domain. An envelope with
	// RequireTLS (RFC 8689) always needs a verified certificate and a
	// server that advertises REQUIRETLS, whatever the policy.
	Policy func(domain string) TLSPolicy

	// Smarthost, "host:port", sends all mail through that relay (the
	// "default relay") instead of looking up MX records. Default: empty,
	// direct delivery. When host is a name it is resolved with Resolver
	// if set, else by the Dialer (the system resolver for a net.Dialer).
	// Policy does not apply to the smarthost; SmarthostTLS does.
	Smarthost string
	// SmarthostTLS is how the smarthost connection is secured. Default
	// SmarthostSTARTTLS.
	SmarthostTLS SmarthostTLS
	// Auth, when set, authenticates to the smarthost (RFC 4954). Default:
	// no authentication.
	Auth *Auth

	// Timeouts bound each step; zero fields take the RFC 5321 4.5.3.2
	// values.
	Timeouts Timeouts
	// MaxHosts caps the number of hosts (MX names) tried per delivery.
	// Default 5, as Postfix's smtp_mx_address_limit.
	MaxHosts int
	// MaxAddresses caps the number of addresses (IPv6 and IPv4) tried per
	// host. Default 2, so that one multi-homed MX cannot use up the
	// attempt.
	MaxAddresses int

	// MaxMessagesPerConn is how many transactions one connection carries
	// before it is closed. Default 100; 1 disables connection reuse.
	MaxMessagesPerConn int
	// MaxIdlePerHost is how many idle connections are kept per
	// destination host. Default 2.
	MaxIdlePerHost int
	// IdleTimeout is how long an idle connection is kept for reuse.
	// Default 5 s: long enough for a queue run to send the next message,
	// well under the 5 minutes after which servers drop idle clients
	// (RFC 5321 4.5.3.2.7).
	IdleTimeout time.Duration

	// Logger receives one record per connection and per delivery. Default:
	// discard.
	Logger *slog.Logger
}
