// Package store is the mailbox model of mailblocks: domains, users, aliases,
// distribution lists, folders, messages, flags, UIDs, quotas and change
// events. It holds interfaces and types only; implementations live in
// sub-packages (store/memstore in memory, store/maildir on a filesystem)
// and every implementation passes the conformance suite in store/storetest.
//
// The interfaces are split by consumer: the SMTP side needs a [Directory]
// to validate recipients, an [Authenticator] for AUTH and a [Deliverer] to
// put mail in a folder; IMAP and POP3 open a user's [Mailbox] and its
// [Folder]s through [Mailboxes]; administration uses [Admin]. A [Store]
// is all of these. A store may also implement the optional
// [QuotaChecker], so that over-quota recipients are refused at RCPT.
//
// Folder names use "/" as the hierarchy separator and are UTF-8; "INBOX"
// is case-insensitive (RFC 3501 5.1). UIDs follow RFC 3501 2.3.1.1: they
// strictly ascend within a folder and are never reused while the folder's
// UIDVALIDITY stays the same.
//
// Besides the interfaces, the package holds the pure logic (no I/O, no
// locking) that every implementation shares, so that they behave alike:
// [DirectoryData] is the directory as a value, with recipient lookup
// (aliases, lists, catch-all, plus-addressing), authentication without a
// timing oracle, and the validated mutations behind [Admin];
// [HashPassword] and [CheckPassword] (argon2id, bcrypt); name checks
// against hostile input ([ValidateFolderName], [CanonicalFolderName],
// [CanonicalAddress], [NormalizeDomain]); flag arithmetic
// ([NormalizeFlags], [ApplyFlags]); [Quota.Exceeded], [Usage.Fits]; and [CRLFReader].
package store
