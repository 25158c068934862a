// Package imapbackend serves mailboxes to IMAP clients: it is a go-imap v2
// [imapserver.Session] over the mailbox model of package store.
//
// A [Backend] turns a store (an [store.Authenticator] and
// [store.Mailboxes]) into sessions for go-imap's server; [NewServer] wires
// one into an [imapserver.Server] with the capabilities below, TLS
// (STARTTLS and implicit TLS via [imapserver.Server.ListenAndServeTLS]) and
// logging.
//
// Implemented: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051); LOGIN and
// AUTHENTICATE PLAIN (RFC 4616), refused without TLS unless
// Options.InsecureAuth; IDLE (RFC 2177); NAMESPACE (RFC 2342); UIDPLUS
// (RFC 4315: APPENDUID, COPYUID, UID EXPUNGE); MOVE (RFC 6851); ESEARCH
// (RFC 4731) and SEARCHRES (RFC 5182); LIST-EXTENDED (RFC 5258),
// LIST-STATUS (RFC 5819), CHILDREN (RFC 3348), SPECIAL-USE and
// CREATE-SPECIAL-USE (RFC 6154); STATUS=SIZE (RFC 8438); BINARY (RFC 3516);
// APPENDLIMIT (RFC 7889); UNSELECT (RFC 3691); UTF8=ACCEPT (RFC 6855);
// LITERAL- but not LITERAL+ (RFC 7888; see Backend.Caps for why).
// Over-quota APPEND, COPY and MOVE fail with
// [OVERQUOTA] (RFC 9208 / RFC 5530).
//
// A session keeps its own view of the selected folder (UIDs, flags, sizes,
// dates) and reports what other sessions, SMTP deliveries and other
// programs changed (EXISTS, EXPUNGE, FETCH FLAGS) after commands and during
// IDLE, by diffing that view against [store.Folder.List] whenever the
// store's change events ([store.Mailbox.Watch]) say the folder changed, or
// at the latest every Options.PollInterval. Parsed envelopes, body
// structures and headers are kept in a bounded cache shared by the
// sessions of a Backend.
//
// Mailbox names arrive decoded from modified UTF-7 (RFC 3501 5.1.3) or as
// UTF-8 (RFC 6855) and are the store's folder names as is, with "/" as the
// hierarchy delimiter; malformed or hostile names are refused with NO
// [CANNOT] before they reach the store.
package imapbackend
