package store

import (
	"errors"

	"github.com/mailblocks/mailblocks"
)

var (
	// ErrAuthFailed is returned by Authenticate for a wrong user or password.
	ErrAuthFailed = errors.New("store: authentication failed")
	// ErrNoSuchUser: the user has no mailbox here. It matches
	// mailblocks.ErrNoSuchUser (550 5.1.1) with errors.Is.
	ErrNoSuchUser = mailblocks.ErrNoSuchUser.Wrap(errors.New("store: no such user"))
	// ErrUserExists: AddUser of an existing user.
	ErrUserExists = errors.New("store: user exists")
	// ErrNoSuchFolder: the folder does not exist.
	ErrNoSuchFolder = errors.New("store: no such folder")
	// ErrFolderExists: CreateFolder or RenameFolder onto an existing folder.
	ErrFolderExists = errors.New("store: folder exists")
	// ErrNoSuchMessage: no message with that UID in the folder.
	ErrNoSuchMessage = errors.New("store: no such message")
	// ErrBadName: a hostile or malformed folder, user or domain name (.., NUL,
	// control characters, absolute paths, escapes from the data directory).
	ErrBadName = errors.New("store: invalid name")
	// ErrNotPermitted: an operation the model forbids (deleting INBOX…).
	ErrNotPermitted = errors.New("store: operation not permitted")
	// ErrLimit: an implementation limit was reached (e.g. the number of
	// distinct keywords a maildir folder can hold). IMAP reports it as
	// NO [LIMIT] (RFC 5530).
	ErrLimit = errors.New("store: implementation limit reached")
	// ErrOverQuota: the mailbox is full. It is a *mailblocks.Error 552 5.2.2,
	// so that SMTP reports it as is and IMAP maps it to [OVERQUOTA].
	ErrOverQuota = mailblocks.ErrMailboxFull.WithMessage("Mailbox full: quota exceeded")
)
