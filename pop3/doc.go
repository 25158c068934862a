// Package pop3 is a POP3 server over a mailbox store, and a POP3 client.
//
// The server implements:
//
//   - RFC 1939 (POP3): the AUTHORIZATION, TRANSACTION and UPDATE states;
//     USER/PASS, APOP (only with a store that implements
//     [APOPAuthenticator]), STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL
//     and QUIT. The maildrop is the user's INBOX as it was at login;
//     deletions are applied only by QUIT (\Deleted then expunge of exactly
//     the deleted messages), a dropped session deletes nothing.
//   - RFC 2449 (extension mechanism): CAPA, response codes, PIPELINING,
//     the 255-octet command line limit.
//   - RFC 2449 and RFC 3206 response codes: IN-USE, AUTH, SYS/TEMP and
//     SYS/PERM.
//   - RFC 2595 STLS, and implicit TLS ("POP3S", port 995) with
//     [Server.ServeTLS] or a listener already wrapped by the caller.
//   - RFC 5034 SASL AUTH with the PLAIN mechanism (RFC 4616).
//
// What clients see:
//
//   - Message numbers 1..n follow ascending store UIDs. The size in STAT
//     and LIST is the store's size (octets with CRLF line endings), which
//     is what RETR sends before the terminating line. A message whose
//     last line lacks its CRLF gets one, so that the terminating ".CRLF"
//     starts a line; such a message arrives two octets longer.
//   - The UIDL unique-id is the folder's UIDVALIDITY and the message's UID
//     as 16 hexadecimal digits: stable across sessions and restarts, and
//     never reused while the folder keeps its UIDVALIDITY.
//   - QUIT flags the retrieved messages \Seen, for IMAP clients of the
//     same mailbox, and expunges exactly the messages marked with DELE.
//   - USER, PASS, APOP and AUTH are refused without TLS unless
//     [Options].AllowInsecureAuth is set; CAPA then advertises neither USER
//     nor SASL, and advertises STLS when a TLS configuration is given.
//
// A session holds an exclusive lock on its maildrop while it is in the
// TRANSACTION state; the lock is per [Server] and per user, in memory.
// Locking against other processes reading the same mailbox is the
// store's concern.
//
// The client ([Client], [Dial], [DialTLS], [NewClient]) speaks the same
// protocol to any RFC 1939 server: STLS, USER/PASS, AUTH PLAIN, STAT, LIST,
// UIDL, RETR and TOP as streams, DELE, RSET, NOOP and QUIT.
package pop3
