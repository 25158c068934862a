package mailblocks

import (
	"errors"
	"strings"
)

// ErrBadAddress is returned (wrapped) by the address helpers for input that
// is not a mailbox address.
var ErrBadAddress = errors.New("mailblocks: malformed address")

// SplitAddress splits a mailbox address (RFC 5321 4.1.2 Mailbox, without
// angle brackets) into its local part and its domain. The local part is
// returned as written (quoted local parts keep their quotes); the domain is
// returned as written too, address literals ("[192.0.2.1]",
// "[IPv6:2001:db8::1]") included. Use NormalizeDomain to compare domains.
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
