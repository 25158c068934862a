// Package maildir is a store.Store and store.Admin on a real file system:
// one Maildir++ directory per user, readable and writable at the same
// time by other maildir programs (mutt/neomutt, mblaze, Dovecot, MDAs).
//
// # Layout
//
//	<dir>/directory.json          users (argon2id/bcrypt hashes, quotas), aliases,
//	                              lists, catch-alls, domains: store.DirectoryData as JSON
//	<dir>/directory.lock          flock taken while changing directory.json
//	<dir>/mail/<domain>/<local>/  one Maildir++ per user (A-label domain, lower-case
//	                              local part); INBOX is its root:
//	    cur/ new/ tmp/            INBOX's messages
//	    .Sent/ .Lists.Work/ ...   other folders ("Lists/Work"), each with
//	                              cur/ new/ tmp/ and an empty maildirfolder file
//	    mailblocks-uidlist        UIDVALIDITY, UIDNEXT, "uid date size base" lines
//	    dovecot-keywords          keyword letters (Dovecot's format)
//	    mailblocks-folder.lock    flock held while the folder changes
//	                              (these three are in every folder directory)
//	    mailblocks-subscriptions  subscribed folders, one name a line
//	    mailblocks-specialuse     "<folder>\t<attribute>" lines (RFC 6154)
//	    mailblocks-uidvalidity    last UIDVALIDITY given in this mailbox
//	    mailblocks-mailbox.lock   flock for folder create/delete/rename and quota checks
//
// Folder names are mapped to Maildir++ directory names with "." as the
// hierarchy separator and each component in modified UTF-7 (RFC 3501
// 5.1.3, as Dovecot stores them); a "." inside a component is written
// "&AC4-". Hostile folder, user and domain names (".." components,
// absolute paths, NUL and control characters, "/" or "\" in a user name)
// are refused with store.ErrBadName before anything touches the disk.
//
// # Messages
//
// Delivery follows the maildir protocol (cr.yp.to/proto/maildir.html):
// write to tmp/ under a unique name ("sec.MusecPpidQn_rand.host"), fsync,
// rename into new/ (or into cur/ with flags when the message has flags),
// fsync the directory; then the UID is appended to the folder's index
// under the folder lock, and fsynced. Concurrent deliveries to a folder
// share that last step (group commit: one write and one fsync of the index
// for all the deliveries waiting on the lock). Files left in tmp/ by a crash are
// removed after 36 hours. Bodies are stored with LF line endings, the
// maildir convention, and read back with CRLF; the file name carries
// ",S=<octets on disk>,W=<octets with CRLF>" as Dovecot's do, so that
// List and Status never open messages. The internal date is the file's
// mtime.
//
// Flags live in the ":2," suffix of the name: D (\Draft), F (\Flagged), R
// (\Answered), S (\Seen), T (\Deleted), and keywords as letters a–z
// defined per folder in dovecot-keywords (so at most 26 keywords per
// folder, ErrTooManyKeywords beyond). Letters mailblocks does not manage
// (P, "passed") are kept.
//
// # Index and other programs
//
// mailblocks-uidlist keeps UIDs and UIDVALIDITY stable across restarts
// (RFC 3501 2.3.1.1). A message is identified by its base name (before
// ":"), so a client that changes flags by renaming, or moves new/ to cur/,
// does not change its UID. List, Status and every change first check (by
// stat) whether the index or the directories changed and if so rescan:
// files dropped in by another program get the next UIDs, files that
// vanished are expunged. Open trusts the known file name and rescans only
// when the file is not there. Messages found in new/ during a scan are
// moved to cur/ (as Dovecot does) so that new/ stays small; a message
// delivered by mailblocks stays in new/ until then.
//
// # Concurrency
//
// A Store is safe for concurrent use, and several Store instances, in one
// process or several, may share a directory: folder state is guarded by
// a mutex and, while it changes, by an flock(2) on the folder's lock file
// (the index is only appended to or atomically replaced under it).
// Folder creation, deletion and renaming take the mailbox lock; so do
// deliveries, appends and copies to a mailbox with a quota, which makes
// the quota check exact under concurrent delivery. Usage is computed from
// the indexes (no maildirsize file).
//
// # Change events
//
// Watch reports changes made through this Store at once. Changes made by
// other programs or other Store instances are reported when this Store
// notices them: on the next call that reads the folder, and by a rescan
// of the watched mailbox every Options.PollInterval (5 s by default). So
// an IMAP IDLE session sees SMTP deliveries of the same process
// immediately and those of other processes within the poll interval.
// Folders created or deleted by other programs are not reported.
package maildir
