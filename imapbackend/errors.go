package imapbackend

import (
	"context"
	"errors"

	"github.com/emersion/go-imap/v2"

	"github.com/mailblocks/mailblocks/store"
)

// Delim is the hierarchy delimiter of mailbox names, the same as the
// store's folder separator.
const Delim = '/'

// respCodeReadOnly is RFC 3501 7.1's READ-ONLY response code.
const respCodeReadOnly imap.ResponseCode = "READ-ONLY"

func imapNo(code imap.ResponseCode, text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

var (
	errReadOnly    = imapNo(respCodeReadOnly, "Mailbox is read-only (EXAMINE)")
	errNoSelection = imapNo(imap.ResponseCodeClientBug, "No mailbox selected")
)

// mapError turns a store error into the NO reply a client sees (RFC 5530
// response codes). Errors without protocol meaning are logged and answered
// with a generic [SERVERBUG] text, never their internal text (rule 5 of
// ARCHITECTURE.md). tryCreate says the command was COPY, MOVE or APPEND,
// where a missing destination is [TRYCREATE] (RFC 3501 6.3.11).
func (s *session) mapError(op string, err error, tryCreate bool) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.Is(err, store.ErrNoSuchFolder):
		if tryCreate {
			return imapNo(imap.ResponseCodeTryCreate, "No such mailbox")
		}
		return imapNo(imap.ResponseCodeNonExistent, "No such mailbox")
	case errors.Is(err, store.ErrFolderExists):
		return imapNo(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, store.ErrBadName):
		return imapNo(imap.ResponseCodeCannot, "Invalid mailbox name")
	case errors.Is(err, store.ErrNotPermitted):
		return imapNo(imap.ResponseCodeCannot, "Operation not permitted on this mailbox")
	case errors.Is(err, store.ErrOverQuota):
		return imapNo(imap.ResponseCodeOverQuota, "Quota exceeded")
	case errors.Is(err, store.ErrNoSuchMessage):
		return imapNo(imap.ResponseCodeNonExistent, "Message no longer exists")
	case errors.Is(err, store.ErrLimit):
		return imapNo(imap.ResponseCodeLimit, "Server limit reached")
	case errors.Is(err, context.Canceled):
		return imapNo(imap.ResponseCodeUnavailable, "Session closing")
	}
	s.log.Error("imapbackend: "+op, "user", s.user, "err", err)
	return imapNo(imap.ResponseCodeServerBug, "Internal server error")
}

// checkName validates a mailbox name from a client before it reaches the
// store, with the store's own rules (store.ValidateFolderName: non-empty
// hierarchy components other than "." and "..", no control characters,
// backslashes or invalid UTF-8, bounded lengths), so that no name can leave
// the data directory and a refusal is NO [CANNOT] rather than a store
// error. INBOX is canonicalised (RFC 3501 5.1: case-insensitive).
func checkName(name string) (string, error) {
	name = store.CanonicalFolderName(name)
	if err := store.ValidateFolderName(name); err != nil {
		return "", imapNo(imap.ResponseCodeCannot, "Invalid mailbox name")
	}
	return name, nil
}
