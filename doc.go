// Package mailblocks is the shared vocabulary of the mailblocks building
// blocks: the SMTP [Envelope] of a message in transit, the SMTP-coded [Error]
// that every package uses to say why mail was refused or deferred, and helpers
// for mail addresses (RFC 5321, RFC 6531, RFC 5890).
//
// It imports only the standard library. The packages that do the work live
// below it: resolver and store (the DNS and mailbox models), smtpserver,
// smtpclient, queue, pop3, imapbackend (the protocol engines), and examples
// that wire them into complete servers.
package mailblocks
