package mailblocks

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadAddress is returned (wrapped) by the address helpers for input that
// is not a mailbox address.
var ErrBadAddress = errors.New("mailblocks: malformed address")

// Length limits of RFC 5321 4.5.3.1.
const (
	// MaxLocalPartLength is the longest local part, in octets (4.5.3.1.1).
	MaxLocalPartLength = 64
	// MaxDomainLength is the longest domain, in octets (4.5.3.1.2).
	MaxDomainLength = 255
	// MaxAddressLength is the longest address without angle brackets: a
	// path is at most 256 octets including them (4.5.3.1.3).
	MaxAddressLength = 254
)

// SplitAddress splits a mailbox address (RFC 5321 4.1.2 Mailbox, without
// angle brackets) into its local part and its domain. The local part is
// returned as written (quoted local parts keep their quotes); the domain is
// returned as written too, address literals ("[192.0.2.1]",
// "[IPv6:2001:db8::1]") included. Use NormalizeDomain to compare domains.
//
// SplitAddress only splits; ValidateAddress and CanonicalAddress check the
// syntax of both parts.
func SplitAddress(addr string) (local, domain string, err error) {
	// The domain starts after the last "@" that is not inside a quoted
	// local part.
	at := -1
	inQuote := false
	for i := 0; i < len(addr); i++ {
		switch c := addr[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '@' && !inQuote:
			at = i
		}
	}
	if at <= 0 || at == len(addr)-1 || inQuote {
		return "", "", ErrBadAddress
	}
	return addr[:at], addr[at+1:], nil
}

// DomainOf returns the domain of addr in lower case, or "" when addr has
// none.
func DomainOf(addr string) string {
	_, d, err := SplitAddress(addr)
	if err != nil {
		return ""
	}
	return strings.ToLower(d)
}

// CanonicalAddress returns addr with its local part preserved (local parts
// are case-sensitive, RFC 5321 2.4) and its domain normalised by
// NormalizeDomain: lower case, A-labels, canonical address literal. It
// fails with an error wrapping ErrBadAddress when addr is not a valid
// mailbox (RFC 5321 4.1.2, RFC 6531 3.3) or exceeds the lengths of RFC 5321
// 4.5.3.1.
func CanonicalAddress(addr string) (string, error) {
	local, domain, err := SplitAddress(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %q: no local part and domain", ErrBadAddress, addr)
	}
	if err := ValidateLocalPart(local); err != nil {
		return "", err
	}
	d, err := NormalizeDomain(domain)
	if err != nil {
		return "", err
	}
	out := local + "@" + d
	if len(out) > MaxAddressLength {
		return "", fmt.Errorf("%w: address longer than %d octets", ErrBadAddress, MaxAddressLength)
	}
	return out, nil
}

// ValidateAddress reports whether addr is a valid mailbox address: a
// dot-string or quoted-string local part (UTF-8 allowed, RFC 6531) and a
// domain name (U-labels allowed) or address literal, within the lengths of
// RFC 5321 4.5.3.1. The error wraps ErrBadAddress.
func ValidateAddress(addr string) error {
	_, err := CanonicalAddress(addr)
	return err
}

// NeedsSMTPUTF8 reports whether addr can only be transmitted with the
// SMTPUTF8 extension (RFC 6531): its local part is not ASCII. A domain in
// U-labels does not need it, since it can be sent as A-labels (see
// CanonicalAddress).
func NeedsSMTPUTF8(addr string) bool {
	local, _, err := SplitAddress(addr)
	if err != nil {
		local = addr
	}
	return !IsASCII(local)
}

// ValidateLocalPart checks local against RFC 5321 4.1.2 (Dot-string or
// Quoted-string) as extended by RFC 6531 3.3 (UTF-8 characters allowed in
// atoms and quoted strings) and the 64-octet limit of RFC 5321 4.5.3.1.1.
// The error wraps ErrBadAddress.
func ValidateLocalPart(local string) error {
	switch {
	case local == "":
		return fmt.Errorf("%w: empty local part", ErrBadAddress)
	case len(local) > MaxLocalPartLength:
		return fmt.Errorf("%w: local part longer than %d octets", ErrBadAddress, MaxLocalPartLength)
	case !utf8.ValidString(local):
		return fmt.Errorf("%w: local part is not UTF-8", ErrBadAddress)
	}
	if local[0] == '"' {
		if _, ok := unquote(local); !ok {
			return fmt.Errorf("%w: bad quoted local part %q", ErrBadAddress, local)
		}
		return nil
	}
	if !isDotString(local) {
		return fmt.Errorf("%w: bad local part %q", ErrBadAddress, local)
	}
	return nil
}

// UnquoteLocalPart returns the value of a local part: a quoted-string
// without its quotes and quoted-pairs, a dot-string as is. `"john.doe"`
// and `john.doe` name the same mailbox (RFC 5321 4.1.2), and so do
// `"a\b"` and `"ab"`.
func UnquoteLocalPart(local string) (string, error) {
	if err := ValidateLocalPart(local); err != nil {
		return "", err
	}
	if local[0] != '"' {
		return local, nil
	}
	v, _ := unquote(local)
	return v, nil
}

// QuoteLocalPart returns s as a local part: as is when it is a valid
// dot-string, otherwise as a quoted-string (RFC 5321 4.1.2 says to use the
// quoted form only when necessary).
func QuoteLocalPart(s string) string {
	if isDotString(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// isDotString reports whether s is a Dot-string: atoms of atext (RFC 5322
// 3.2.3, and UTF-8 non-ASCII per RFC 6531 3.3) separated by single dots.
func isDotString(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	prevDot := true // no leading dot
	for _, r := range s {
		if r == '.' {
			if prevDot {
				return false
			}
			prevDot = true
			continue
		}
		if !isAtext(r) {
			return false
		}
		prevDot = false
	}
	return !prevDot
}

func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= utf8.RuneSelf:
		return isUTF8Text(r)
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// isUTF8Text accepts the non-ASCII characters RFC 6531 allows, except
// control characters, which have no business in an address.
func isUTF8Text(r rune) bool {
	return r != utf8.RuneError && !unicode.IsControl(r)
}

// unquote parses a Quoted-string (RFC 5321 4.1.2: qtextSMTP and
// quoted-pairSMTP, plus UTF-8 per RFC 6531) and returns its value.
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' || !utf8.ValidString(s) {
		return "", false
	}
	var b strings.Builder
	inner := s[1 : len(s)-1]
	for i := 0; i < len(inner); {
		r, size := utf8.DecodeRuneInString(inner[i:])
		switch {
		case r == '\\':
			// quoted-pairSMTP = %d92 %d32-126
			if i+1 >= len(inner) || inner[i+1] < 32 || inner[i+1] > 126 {
				return "", false
			}
			b.WriteByte(inner[i+1])
			i += 2
			continue
		case r == '"':
			return "", false
		case r >= 32 && r <= 126, r >= utf8.RuneSelf && isUTF8Text(r):
			b.WriteRune(r)
		default:
			return "", false
		}
		i += size
	}
	return b.String(), true
}

// IsASCII reports whether s is 7-bit: whether an address or a header can
// travel without SMTPUTF8 (RFC 6531) or 8BITMIME.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
