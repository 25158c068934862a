// Package smtpserver is the front door of a mail system: an SMTP server for
// inbound mail (MX, port 25), message submission (RFC 6409, port 587 with
// STARTTLS and RFC 8314 port 465 with implicit TLS) and LMTP (RFC 2033), with
// the policy a public mail server needs.
//
// It is built on github.com/emersion/go-smtp, which parses the protocol, and
// adds what go-smtp leaves to its users:
//
//   - listener modes sharing one engine: [MX], [Submission], [Submissions],
//     [LMTP] (see [Server.Serve]);
//   - relay control (RFC 5321 3.6): mail for a domain that is not ours is
//     accepted only from authenticated users and trusted networks, and the
//     classic routing tricks (user%remote@ours, "user@remote"@ours,
//     remote!user@ours, source routes) are refused;
//   - recipient validation through a [Directory], quotas through an optional
//     [QuotaChecker];
//   - AUTH PLAIN (RFC 4616) and LOGIN through an [Authenticator], offered only
//     over TLS, with a delay after each failure and a per-IP lockout;
//   - limits: message size (SIZE, RFC 1870), recipients, connections and
//     messages per client IP, command and DATA timeouts (RFC 5321 4.5.3.2),
//     line length, errors per session;
//   - a Received header (RFC 5321 4.4, RFC 3848 "with" keywords), loop
//     detection, Message-ID and Date added on submission (RFC 6409 8);
//   - [Checker] extension points at connect, MAIL, RCPT, after the header of
//     the message ([DataChecker], streaming) and after the whole message
//     ([BodyChecker], spooled to a temporary file);
//   - a [Handler] that receives the envelope and the streamed message and
//     must make it durable before the server answers 250.
//
// # Local and remote recipients
//
// The server asks the [Directory] about each recipient at RCPT time to
// apply its policy, but passes the handler only the envelope: every
// recipient in it was accepted (local, or relaying allowed for this client)
// and the handler resolves them again through the same directory to choose
// between the store and the queue. This keeps the Handler interface small
// and lets a handler be used without a server (e.g. for local submission).
//
// The ESMTP extensions offered are PIPELINING (RFC 2920), 8BITMIME (RFC 6152),
// SIZE (RFC 1870), ENHANCEDSTATUSCODES (RFC 2034), SMTPUTF8 (RFC 6531),
// CHUNKING (RFC 3030), DSN (RFC 3461), REQUIRETLS (RFC 8689, only over TLS),
// STARTTLS (RFC 3207) and AUTH (RFC 4954).
//
// # Message content
//
// RFC 5321 2.3.8 forbids a bare LF in message content; since the 2023
// "SMTP smuggling" attacks, accepting one is a risk for every server the
// message is relayed to. By default a message containing a bare LF is
// refused (550 5.5.2, [ErrBareLF]); [Options].BareLF can normalise bare LF to
// CRLF instead. A NUL byte is never valid in a message sent with DATA (RFC
// 5322 2.1 and RFC 6152 do not allow it; BINARYMIME is not offered): such a
// message is refused with 554 5.6.0 ([ErrNULByte]). In both cases the session
// continues.
//
// # Limits of go-smtp worth knowing
//
// go-smtp does not tell HELO from EHLO, so the Received field always says
// ESMTP (or LMTP). It ends a session after four unrecognised commands,
// independently of [Options].MaxErrors. Its DATA reader returns data in
// blocks of 4 KiB, so the handler starts once 4 KiB (or the whole message)
// has arrived.
package smtpserver
