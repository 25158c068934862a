// Package smtpclient delivers mail to other mail systems over SMTP (RFC
// 5321): the outbound half of an MTA. Its [Client.Deliver] takes an
// envelope and a streamed body and returns one [mailblocks.DeliveryStatus]
// per recipient; it satisfies the queue's Deliverer interface.
//
// Routing (RFC 5321 5.1): recipients are grouped by domain; each domain's MX
// records are looked up through a [Resolver] and tried in preference order,
// equal preferences in random order, at most Options.MaxHosts hosts and
// Options.MaxAddresses addresses (IPv6 and IPv4) per host. A domain without
// MX records is its own implicit MX; a null MX (RFC 7505) fails permanently
// with 5.1.10, a non-existent domain with 5.1.2, a DNS failure temporarily
// with 4.4.3. The next host is tried when a connection fails, the greeting
// or EHLO is refused (4xx or 5xx, like Postfix's smtp_skip_5xx_greeting),
// or the TLS policy cannot be met; once a host has taken the session its
// answers to MAIL, RCPT and DATA are final. When every host fails, the
// result is temporary if any of them failed temporarily (a later attempt
// may reach it), else the last permanent failure. Address literals (user@[192.0.2.1])
// are delivered to that address. In smarthost mode every message goes to
// one relay, optionally with AUTH PLAIN or LOGIN (RFC 4954, RFC 4616) over
// STARTTLS or implicit TLS (RFC 8314).
//
// TLS: opportunistic STARTTLS (RFC 3207) by default, with a clear-text
// retry when the TLS handshake fails; a per-domain [TLSPolicy] can require
// a verified certificate, failing temporarily (4.7.5) otherwise. REQUIRETLS
// (RFC 8689) envelopes go only over verified TLS to servers that advertise
// REQUIRETLS, else fail with 5.7.30.
//
// ESMTP: SIZE (RFC 1870; a message larger than the server's limit is
// refused up front with 5.3.4), 8BITMIME (RFC 6152; 8-bit messages are
// sent to servers without it anyway, as Postfix does), SMTPUTF8 (RFC 6531;
// no downgrade: an SMTPUTF8 message to a server without it fails with
// 5.6.7), DSN (RFC 3461: RET, ENVID, NOTIFY, ORCPT are passed on, and
// DeliveryStatus.RemoteDSN tells the queue that the next hop took over the
// notification duty), REQUIRETLS.
//
// Failures are [*Error] values wrapping a [*mailblocks.Error]: the remote
// reply (code, enhanced code, text) or a local classification, plus the
// command that failed and the host. A 4xx or 5xx to RCPT affects that
// recipient only; one to MAIL, DATA or the end of data affects the whole
// transaction; a broken connection is temporary. Every step has the
// timeout of RFC 5321 4.5.3.2 ([Timeouts]).
//
// Sessions are reused: after a transaction the connection is kept idle for
// a few seconds (Options.IdleTimeout) and the next message to the same host
// starts with RSET on it instead of a new connection, up to
// Options.MaxMessagesPerConn transactions per connection.
package smtpclient
