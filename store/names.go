package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/mailblocks/mailblocks"
)

// Limits on names. Folder limits are generous for IMAP clients and still
// far below PATH_MAX once a store maps names to paths.
const (
	// MaxFolderNameLen is the longest folder name, in octets.
	MaxFolderNameLen = 1024
	// MaxFolderSegmentLen is the longest component between two "/", in
	// octets (NAME_MAX of common file systems).
	MaxFolderSegmentLen = 255
	// MaxLocalPartLen is the longest local part (RFC 5321 4.5.3.1.1).
	MaxLocalPartLen = 64
	// MaxDomainLen is the longest domain (RFC 5321 4.5.3.1.2).
	MaxDomainLen = 255
)

// Inbox is the name of the folder that every mailbox has.
const Inbox = "INBOX"

// FolderSeparator is the hierarchy separator of folder names.
const FolderSeparator = "/"

// CanonicalFolderName maps any spelling of INBOX to "INBOX" (RFC 3501
// 5.1: INBOX is case-insensitive), also as the first component of a child
// ("inbox/Work" → "INBOX/Work"). Other names are returned unchanged.
func CanonicalFolderName(name string) string {
	first, rest, hasRest := strings.Cut(name, FolderSeparator)
	if len(first) == len(Inbox) && strings.EqualFold(first, Inbox) {
		if hasRest {
			return Inbox + FolderSeparator + rest
		}
		return Inbox
	}
	return name
}

// ValidateFolderName refuses names that are malformed or that could
// escape a data directory once mapped to a path: empty names, invalid
// UTF-8, NUL and other control characters, a leading or trailing "/",
// empty, "." or ".." components, backslashes, and names longer than
// MaxFolderNameLen (or a component longer than MaxFolderSegmentLen). The
// error wraps ErrBadName.
func ValidateFolderName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("store: folder name %q: %s: %w", truncate(name), why, ErrBadName)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxFolderNameLen:
		return bad("too long")
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return bad("control character")
		}
		if r == '\\' {
			return bad("backslash")
		}
	}
	for _, seg := range strings.Split(name, FolderSeparator) {
		switch {
		case seg == "":
			return bad("empty component (leading, trailing or double /)")
		case seg == "." || seg == "..":
			return bad("dot component")
		case len(seg) > MaxFolderSegmentLen:
			return bad("component too long")
		}
	}
	return nil
}

// truncate shortens a hostile name for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// NormalizeDomain returns domain in lower-case A-label form (IDNA 2008,
// UTS 46 lookup profile) without a trailing dot. It refuses address
// literals, empty labels and characters outside letters, digits and
// hyphen, with an error wrapping ErrBadName.
func NormalizeDomain(domain string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("store: domain %q: %s: %w", truncate(domain), why, ErrBadName)
	}
	d := strings.TrimSuffix(domain, ".")
	if d == "" {
		return bad("empty")
	}
	ascii := true
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		d = strings.ToLower(d)
	} else {
		a, err := idna.Lookup.ToASCII(d)
		if err != nil {
			return bad("not a valid internationalised domain")
		}
		d = a
	}
	if len(d) > MaxDomainLen {
		return bad("too long")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return bad("empty or too long label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("label starts or ends with a hyphen")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return bad("invalid character")
			}
		}
	}
	return d, nil
}

// SplitCanonical validates addr and returns its local part as written and
// its normalised domain. It refuses, with an error wrapping ErrBadName,
// what mailblocks.SplitAddress refuses and also local parts that are
// longer than MaxLocalPartLen octets, contain control characters, "/" or
// "\" outside quotes, or are "." or ".." — so that a local part can be
// used as a file name.
func SplitCanonical(addr string) (local, domain string, err error) {
	l, d, err := mailblocks.SplitAddress(addr)
	if err != nil {
		return "", "", fmt.Errorf("store: address %q: %w: %w", truncate(addr), ErrBadName, err)
	}
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("store: address %q: %s: %w", truncate(addr), why, ErrBadName)
	}
	switch {
	case len(l) > MaxLocalPartLen:
		return bad("local part too long")
	case !utf8.ValidString(l):
		return bad("local part not UTF-8")
	case l == "." || l == "..":
		return bad("dot local part")
	}
	for _, r := range l {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return bad("forbidden character in local part")
		}
	}
	nd, err := NormalizeDomain(d)
	if err != nil {
		return "", "", err
	}
	return l, nd, nil
}

// CanonicalAddress returns the form of addr used as a key in the
// directory: the local part in lower case (local parts are matched
// case-insensitively, as Postfix and Dovecot do) and the domain
// normalised by NormalizeDomain. Errors wrap ErrBadName.
func CanonicalAddress(addr string) (string, error) {
	l, d, err := SplitCanonical(addr)
	if err != nil {
		return "", err
	}
	return strings.ToLower(l) + "@" + d, nil
}
