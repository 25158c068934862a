package maildir

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mailblocks/mailblocks/store"
)

// On-disk folder names (Maildir++): INBOX is the mailbox root; any other
// folder "A/B" lives in the directory ".A.B" of the root, "." being the
// on-disk hierarchy separator. Each component is encoded in modified UTF-7
// (RFC 3501 5.1.3), like Dovecot does by default, so that non-ASCII names
// are stored as plain ASCII; in addition "." inside a component (which
// would read as a separator) is encoded as "&AC4-", its modified UTF-7
// form. Decoding is plain modified UTF-7, so Dovecot shows the same names.

// mutf7 is the modified base64 of RFC 3501 5.1.3: "," instead of "/", no
// padding.
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// maxDiskName bounds the encoded directory name; most filesystems allow
// 255 octets per path component and the folder is one component.
const maxDiskName = 240

// checkFolderName validates a store folder name (store.ValidateFolderName)
// and returns it canonical ("inbox" becomes "INBOX", RFC 3501 5.1). It also
// refuses names whose encoded directory name would be too long.
func checkFolderName(name string) (string, error) {
	name = store.CanonicalFolderName(name)
	if err := store.ValidateFolderName(name); err != nil {
		return "", fmt.Errorf("maildir: %w", err)
	}
	if name != store.Inbox && len(encodeFolder(name)) > maxDiskName {
		return "", fmt.Errorf("maildir: folder %q: name too long on disk: %w", name, store.ErrBadName)
	}
	return name, nil
}

// encodeFolder returns the directory name of a valid folder other than
// INBOX: "." followed by the encoded components joined with ".".
func encodeFolder(name string) string {
	var b strings.Builder
	for _, c := range strings.Split(name, "/") {
		b.WriteByte('.')
		encodeComponent(&b, c)
	}
	return b.String()
}

func encodeComponent(b *strings.Builder, s string) {
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		raw := make([]byte, 2*len(u))
		for i, v := range u {
			raw[2*i], raw[2*i+1] = byte(v>>8), byte(v)
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(raw))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r < 0x7f && r != '.':
			flush()
			b.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
}

// decodeFolder turns a directory name (".A.B") back into a folder name; ok
// is false for names that are not folders or not valid modified UTF-7.
func decodeFolder(dir string) (string, bool) {
	if len(dir) < 2 || dir[0] != '.' {
		return "", false
	}
	parts := strings.Split(dir[1:], ".")
	out := make([]string, len(parts))
	for i, p := range parts {
		s, ok := decodeComponent(p)
		if !ok || s == "" {
			return "", false
		}
		out[i] = s
	}
	name := strings.Join(out, "/")
	if n, err := checkFolderName(name); err != nil || n == "INBOX" {
		return "", false
	}
	return name, true
}

func decodeComponent(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '&' {
			if c < 0x20 || c >= 0x7f {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '-')
		if end < 0 {
			return "", false
		}
		enc := s[i+1 : i+end]
		i += end
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError {
				return "", false
			}
			b.WriteRune(r)
		}
	}
	return b.String(), true
}

// checkPathPart refuses a user or domain name that cannot safely be one
// directory name below the data directory.
func checkPathPart(kind, s string) error {
	bad := s == "" || s == "." || s == ".." || len(s) > 255 ||
		!utf8.ValidString(s) || strings.ContainsAny(s, "/\\")
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("maildir: %s %q: %w", kind, s, store.ErrBadName)
	}
	return nil
}

// within reports whether path is root or below it, as a last line of
// defence after the name checks.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
