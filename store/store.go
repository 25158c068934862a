package store

import (
	"context"
	"io"
	"time"
)

// Store is a complete mailbox system.
type Store interface {
	Directory
	Authenticator
	Deliverer
	Mailboxes
}

// Directory answers "who is this address?" for recipient validation and
// routing.
type Directory interface {
	// LookupRecipient resolves addr through users, plus-addressing,
	// aliases, distribution lists and the domain's catch-all. Address
	// syntax errors are returned as errors; an unknown address is not an
	// error (Kind is LookupUnknown).
	LookupRecipient(ctx context.Context, addr string) (Lookup, error)
}

// QuotaChecker is an optional interface of a Directory (as http.Flusher is
// of an http.ResponseWriter: test for it with a type assertion). A store
// that implements it lets an SMTP server refuse an over-quota recipient
// at RCPT with 552 5.2.2 (RFC 5321 4.5.3.1.10), or one too big for the
// space left when the client declared SIZE (RFC 1870), instead of
// accepting the message and failing at delivery, which for an MX means a
// bounce. store/memstore and store/maildir implement it.
//
// The check is advisory: a delivery running at the same time may fill
// the mailbox between the check and the message. Delivery enforces the
// quota again and settles such a race.
type QuotaChecker interface {
	// CheckQuota returns an error matching ErrOverQuota (a
	// *mailblocks.Error that matches mailblocks.ErrMailboxFull) when a
	// message of size octets (CRLF line endings; 0 when unknown) does not
	// fit in the mailbox of user, a canonical address as found in
	// Lookup.Users; nil when it fits. An unknown size counts as one more
	// message of one octet, so a mailbox that is exactly full is refused.
	// An unknown user gives ErrNoSuchUser.
	CheckQuota(ctx context.Context, user string, size int64) error
}

// LookupKind says what a Directory knows of an address.
type LookupKind int

const (
	// LookupNotOurDomain: the domain is not served here (relay question).
	LookupNotOurDomain LookupKind = iota
	// LookupUnknown: the domain is ours but nobody has this address.
	LookupUnknown
	// LookupLocal: the address reaches one or more mailboxes (and possibly
	// remote addresses, for distribution lists).
	LookupLocal
)

// String returns the kind in the form logs use: "local", "unknown",
// "not-our-domain".
func (k LookupKind) String() string {
	switch k {
	case LookupNotOurDomain:
		return "not-our-domain"
	case LookupUnknown:
		return "unknown"
	case LookupLocal:
		return "local"
	}
	return "invalid"
}

// Lookup is the answer of Directory.LookupRecipient.
type Lookup struct {
	Kind LookupKind
	// Users are the canonical addresses of the local mailboxes reached,
	// deduplicated.
	Users []string
	// Remote are addresses in other domains that a distribution list or
	// alias forwards to.
	Remote []string
	// Folder is the folder that plus-addressing asked for ("user+Lists@"
	// → "Lists") when it exists, else empty (deliver to INBOX).
	Folder string
}

// Authenticator checks a user's password against its stored hash.
type Authenticator interface {
	// Authenticate returns the canonical address of the user. A username
	// without "@" is taken in the default domain. A wrong password or an
	// unknown user both return ErrAuthFailed, so that the two cannot be
	// told apart.
	Authenticate(ctx context.Context, username, password string) (user string, err error)
}

// Deliverer puts one message into one user's folder.
type Deliverer interface {
	// Deliver stores the message read from r, atomically and durably (it
	// is on stable storage when Deliver returns nil). Over quota it fails
	// with an error matching ErrOverQuota.
	Deliver(ctx context.Context, user string, r io.Reader, opts DeliverOptions) (UID, error)
}

// DeliverOptions are the optional parameters of Deliver.
type DeliverOptions struct {
	// Folder is the destination; empty means INBOX. A folder that does
	// not exist falls back to INBOX.
	Folder string
	// Flags are set on the new message; nil means none.
	Flags []string
	// Date is the internal date; the zero value means now.
	Date time.Time
}

// Mailboxes opens users' mailboxes.
type Mailboxes interface {
	// Mailbox returns the mailbox of a user given by canonical address (as
	// returned by Authenticate or LookupRecipient). An unknown user gives
	// ErrNoSuchUser.
	Mailbox(ctx context.Context, user string) (Mailbox, error)
}

// Mailbox is one user's set of folders. It is safe for concurrent use.
type Mailbox interface {
	// User is the canonical address of the owner.
	User() string
	// Folders lists every folder, sorted by name, INBOX first.
	Folders(ctx context.Context) ([]FolderInfo, error)
	// CreateFolder creates a folder (and missing parents). ErrFolderExists
	// if it exists; ErrBadName if use is not Valid.
	CreateFolder(ctx context.Context, name string, use SpecialUse) error
	// DeleteFolder deletes a folder and its messages; INBOX cannot be
	// deleted. Children are kept (RFC 3501 6.3.4).
	DeleteFolder(ctx context.Context, name string) error
	// RenameFolder renames a folder and its children. Renaming INBOX moves
	// its messages to the new folder and leaves INBOX empty (RFC 3501 6.3.5).
	RenameFolder(ctx context.Context, from, to string) error
	// SetSubscribed changes the subscription of a folder.
	SetSubscribed(ctx context.Context, name string, subscribed bool) error
	// Folder opens a folder; ErrNoSuchFolder if it does not exist.
	Folder(ctx context.Context, name string) (Folder, error)
	// Usage reports the space used and the quota that applies.
	Usage(ctx context.Context) (Usage, error)
	// Watch returns a channel of change events for this mailbox, closed
	// when ctx is done. Events are hints: a slow receiver may miss some
	// but always gets at least one after any change, and is expected to
	// re-read the state of the folders it shows.
	Watch(ctx context.Context) (<-chan Event, error)
}

// Folder is one folder of a mailbox. Its methods always act on the current
// state, including changes made by other sessions and other programs.
type Folder interface {
	// Name is the folder's name.
	Name() string
	// Status returns UIDVALIDITY, UIDNEXT and counts.
	Status(ctx context.Context) (FolderStatus, error)
	// List returns every message in ascending UID order.
	List(ctx context.Context) ([]MessageInfo, error)
	// Open returns the raw message (CRLF line endings) for reading.
	// ErrNoSuchMessage if uid is not in the folder.
	Open(ctx context.Context, uid UID) (io.ReadCloser, error)
	// Append adds a message (RFC 3501 APPEND); flags may be nil and a zero
	// date means now. Over quota it fails with ErrOverQuota.
	Append(ctx context.Context, r io.Reader, flags []string, date time.Time) (UID, error)
	// SetFlags changes the flags of the messages in uids (missing UIDs are
	// skipped) and returns their new state.
	SetFlags(ctx context.Context, uids []UID, op FlagOp, flags []string) ([]MessageInfo, error)
	// Copy copies messages into dest, keeping flags and internal dates.
	Copy(ctx context.Context, uids []UID, dest string) (CopyResult, error)
	// Move moves messages into dest (RFC 6851), atomically per message.
	Move(ctx context.Context, uids []UID, dest string) (CopyResult, error)
	// Expunge permanently removes the messages flagged \Deleted; when uids
	// is non-nil, only those among them (UID EXPUNGE, RFC 4315). It
	// returns the UIDs removed, ascending.
	Expunge(ctx context.Context, uids []UID) ([]UID, error)
}

// UID is a message's unique identifier within a folder.
type UID uint32

// System flags (RFC 3501 2.3.2). Keywords are any other atom.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// FlagOp says how SetFlags combines flags with the existing ones.
type FlagOp int

const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// SpecialUse is a folder's RFC 6154 attribute, or "" for none.
type SpecialUse string

// The special-use attributes of RFC 6154 2.
const (
	SpecialAll     SpecialUse = `\All`
	SpecialArchive SpecialUse = `\Archive`
	SpecialDrafts  SpecialUse = `\Drafts`
	SpecialFlagged SpecialUse = `\Flagged`
	SpecialJunk    SpecialUse = `\Junk`
	SpecialSent    SpecialUse = `\Sent`
	SpecialTrash   SpecialUse = `\Trash`
)

// Valid reports whether u is "" or one of the attributes above, the only
// values CreateFolder accepts (ErrBadName otherwise).
func (u SpecialUse) Valid() bool {
	switch u {
	case "", SpecialAll, SpecialArchive, SpecialDrafts, SpecialFlagged, SpecialJunk, SpecialSent, SpecialTrash:
		return true
	}
	return false
}

// DefaultFolder is one folder created with every new mailbox.
type DefaultFolder struct {
	Name string
	Use  SpecialUse
}

// DefaultFolders are the folders created with every mailbox unless an
// implementation's options say otherwise.
var DefaultFolders = []DefaultFolder{
	{"INBOX", ""},
	{"Sent", SpecialSent},
	{"Drafts", SpecialDrafts},
	{"Trash", SpecialTrash},
	{"Junk", SpecialJunk},
	{"Archive", SpecialArchive},
}

// FolderInfo describes a folder in a listing.
type FolderInfo struct {
	Name       string
	SpecialUse SpecialUse
	Subscribed bool
}

// FolderStatus is the state of a folder (RFC 3501 STATUS, SELECT).
type FolderStatus struct {
	UIDValidity uint32
	UIDNext     UID
	Messages    int
	Unseen      int
	Deleted     int
	Size        int64
}

// MessageInfo is what a folder knows of a message without reading it.
type MessageInfo struct {
	UID          UID
	Flags        []string
	InternalDate time.Time
	// Size is the size in octets of the message with CRLF line endings
	// (RFC 3501 RFC822.SIZE).
	Size int64
}

// CopyResult pairs source and destination UIDs (RFC 4315 COPYUID).
type CopyResult struct {
	UIDValidity uint32 // of the destination folder
	Source      []UID
	Dest        []UID
}

// Quota limits a mailbox. A zero field means no limit.
type Quota struct {
	Bytes    int64
	Messages int64
}

// Usage is a mailbox's consumption beside its quota.
type Usage struct {
	Bytes    int64
	Messages int64
	Quota    Quota
}

// Fits is the rule of QuotaChecker.CheckQuota: whether the mailbox has
// room under u.Quota for one more message of size octets (0 or less when
// unknown: counted as one octet).
func (u Usage) Fits(size int64) bool {
	return !u.Quota.Exceeded(u.Bytes, u.Messages, max(size, 1), 1)
}

// EventKind says what changed.
type EventKind int

const (
	EventMessageAdded EventKind = iota + 1
	EventMessageExpunged
	EventFlagsChanged
	EventFolderCreated
	EventFolderDeleted
	EventFolderRenamed
)

// Event is a change in a mailbox.
type Event struct {
	Kind   EventKind
	Folder string
	// UID is the message concerned, for message events (0 when unknown,
	// e.g. a change noticed on disk).
	UID UID
	// Flags are the new flags, for EventFlagsChanged.
	Flags []string
	// NewName is the new name, for EventFolderRenamed.
	NewName string
}
