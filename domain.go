package mailblocks

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NormalizeDomain returns the canonical form of a mail domain, in which
// domains can be compared and looked up in DNS:
//
//   - a domain name in lower case with its labels as A-labels ("Bücher.DE"
//     becomes "xn--bcher-kva.de", RFC 5890 2.3.2.1, Punycode of RFC 3492),
//     without a trailing dot;
//   - an address literal in canonical form: "[192.0.2.1]",
//     "[IPv6:2001:db8::1]" (RFC 5321 4.1.3; the IPv6 address as RFC 5952
//     writes it).
//
// It checks the syntax of RFC 5321 4.1.2 (letters, digits and hyphens,
// labels of at most 63 octets, 255 octets in all) and, for U-labels, that
// they consist of letters, marks, digits and hyphens and do not have
// hyphens in the third and fourth positions (RFC 5891 4.2.3.1). It applies
// no Unicode normalisation (the standard library has none): input should
// be in NFC, as RFC 5891 5.3 requires. The error wraps ErrBadAddress.
func NormalizeDomain(domain string) (string, error) {
	if strings.HasPrefix(domain, "[") {
		return normalizeLiteral(domain)
	}
	d := strings.TrimSuffix(domain, ".")
	if d == "" {
		return "", fmt.Errorf("%w: empty domain", ErrBadAddress)
	}
	if !utf8.ValidString(d) {
		return "", fmt.Errorf("%w: domain is not UTF-8", ErrBadAddress)
	}
	labels := strings.Split(d, ".")
	for i, l := range labels {
		a, err := toALabel(l)
		if err != nil {
			return "", fmt.Errorf("%w: domain %q: %v", ErrBadAddress, domain, err)
		}
		labels[i] = a
	}
	out := strings.Join(labels, ".")
	if len(out) > MaxDomainLength {
		return "", fmt.Errorf("%w: domain longer than %d octets", ErrBadAddress, MaxDomainLength)
	}
	return out, nil
}

// DomainToUnicode returns domain in lower case with its A-labels turned
// into U-labels ("xn--bcher-kva.de" becomes "bücher.de"), for display and
// for SMTPUTF8 peers (RFC 6531 3.2). Address literals are returned in
// canonical form. The error wraps ErrBadAddress.
func DomainToUnicode(domain string) (string, error) {
	d, err := NormalizeDomain(domain)
	if err != nil || strings.HasPrefix(d, "[") {
		return d, err
	}
	labels := strings.Split(d, ".")
	for i, l := range labels {
		if hasACEPrefix(l) {
			u, err := punyDecode(l[4:])
			if err != nil {
				return "", fmt.Errorf("%w: domain %q: label %q: %v", ErrBadAddress, domain, l, err)
			}
			labels[i] = u
		}
	}
	return strings.Join(labels, "."), nil
}

// AddressLiteral returns the IP address of an address literal domain
// ("[192.0.2.1]", "[IPv6:2001:db8::1]", RFC 5321 4.1.3); ok is false when
// domain is not one.
func AddressLiteral(domain string) (ip netip.Addr, ok bool) {
	if len(domain) < 2 || domain[0] != '[' || domain[len(domain)-1] != ']' {
		return netip.Addr{}, false
	}
	inner := domain[1 : len(domain)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		a, err := netip.ParseAddr(inner[5:])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a, true
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

func normalizeLiteral(domain string) (string, error) {
	a, ok := AddressLiteral(domain)
	if !ok {
		return "", fmt.Errorf("%w: bad or unsupported address literal %q", ErrBadAddress, domain)
	}
	if a.Is4() {
		return "[" + a.String() + "]", nil
	}
	return "[IPv6:" + a.String() + "]", nil
}

// hasACEPrefix reports whether label starts with "xn--" (RFC 5890 2.3.2.5),
// in any case.
func hasACEPrefix(label string) bool {
	return len(label) >= 4 && strings.EqualFold(label[:4], "xn--")
}

// toALabel validates one label and returns it as a lower-case A-label (or
// LDH label).
func toALabel(label string) (string, error) {
	if label == "" {
		return "", fmt.Errorf("empty label")
	}
	if IsASCII(label) {
		l := strings.ToLower(label)
		if err := checkLDH(l); err != nil {
			return "", err
		}
		if hasACEPrefix(l) {
			// An A-label must decode to a valid U-label that encodes back
			// to itself (RFC 5891 5.4).
			u, err := punyDecode(l[4:])
			if err != nil || IsASCII(u) {
				return "", fmt.Errorf("label %q is not a valid A-label", label)
			}
			if err := checkULabel(u); err != nil {
				return "", fmt.Errorf("label %q: %v", label, err)
			}
			if enc, err := punyEncode(u); err != nil || "xn--"+enc != l {
				return "", fmt.Errorf("label %q is not a valid A-label", label)
			}
		}
		return l, nil
	}
	u := strings.ToLower(label)
	if err := checkULabel(u); err != nil {
		return "", err
	}
	enc, err := punyEncode(u)
	if err != nil {
		return "", err
	}
	a := "xn--" + enc
	if len(a) > 63 {
		return "", fmt.Errorf("label %q longer than 63 octets as an A-label", label)
	}
	return a, nil
}

// checkLDH checks an ASCII label: letters, digits, hyphens, at most 63
// octets, no hyphen at either end (RFC 5321 4.1.2 sub-domain, RFC 1035
// 2.3.1).
func checkLDH(l string) error {
	if len(l) > 63 {
		return fmt.Errorf("label %q longer than 63 octets", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("label %q has character %q", l, c)
		}
	}
	return nil
}

// checkULabel checks a U-label with the rules that can be applied without
// the IDNA2008 tables: letters, combining marks, digits and hyphens only,
// no upper case (IDNA2008 does not map case), not starting with a
// combining mark (RFC 5891 4.2.3.2), no hyphen at
// either end nor in the third and fourth positions (4.2.3.1).
func checkULabel(u string) error {
	if u == "" {
		return fmt.Errorf("empty label")
	}
	runes := []rune(u)
	if runes[0] == '-' || runes[len(runes)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", u)
	}
	if len(runes) >= 4 && runes[2] == '-' && runes[3] == '-' {
		return fmt.Errorf("label %q has hyphens in the third and fourth positions", u)
	}
	if unicode.Is(unicode.M, runes[0]) {
		return fmt.Errorf("label %q starts with a combining mark", u)
	}
	for _, r := range runes {
		switch {
		case r == '-', r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9'):
		case r >= utf8.RuneSelf && !unicode.IsUpper(r) && (unicode.IsLetter(r) || unicode.Is(unicode.M, r) || unicode.IsDigit(r)):
		default:
			return fmt.Errorf("label %q has character %q", u, r)
		}
	}
	return nil
}
