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
//   - RFC 3206 response codes [IN-USE], [AUTH], [SYS/TEMP], [SYS/PERM].
//   - RFC 2595 STLS, and implicit TLS ("POP3S", port 995) with
//     [Server.ServeTLS] or a listener already wrapped by the caller.
//   - RFC 5034 SASL AUTH with the PLAIN mechanism (RFC 4616).
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
