package resolver

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mailblocks/mailblocks"
)

// canonical returns name in lower case without the trailing dot: the form
// in which names are compared and returned.
func canonical(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// tlsaName is the owner name of the TLSA records of a service (RFC 6698
// 3): "_<port>._<proto>.<host>".
func tlsaName(port int, proto, host string) string {
	return "_" + strconv.Itoa(port) + "._" + proto + "." + canonical(host)
}

// ptrAddr is the text form of ip that PTR lookups use: an IPv4-mapped
// IPv6 address as IPv4, without zone.
func ptrAddr(ip netip.Addr) string { return ip.Unmap().WithZone("").String() }

// checkName reports whether name (canonical form) can be queried: ASCII
// (RFC 5890 A-labels), labels of 1 to 63 octets, at most 253 octets in all
// (RFC 1035 2.3.4), no spaces or control characters.
func checkName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c <= ' ' || c >= 0x7f || c == '\\':
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

// finishMX sorts mx by preference (stable, so that equal preferences keep
// the server's order) and applies RFC 7505: a set consisting only of the
// null MX "." means the domain accepts no mail; a "." mixed with real
// exchangers is a misconfiguration and is ignored.
func finishMX(mx []MX) ([]MX, bool) {
	real := mx[:0:0]
	for _, m := range mx {
		if m.Host != "" {
			real = append(real, m)
		}
	}
	if len(real) == 0 && len(mx) > 0 {
		return nil, true
	}
	slices.SortStableFunc(real, func(a, b MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return real, false
}

// maxCNAMEDefault bounds CNAME chains; RFC 1034 3.6.2 asks resolvers to
// detect loops, and real chains are short.
const maxCNAMEDefault = 8

// queryName returns name in the form to query: canonical, with U-labels
// turned into A-labels (RFC 5891 5), and checked.
func queryName(name string) (string, bool) {
	n := canonical(name)
	for i := 0; i < len(n); i++ {
		if n[i] >= utf8.RuneSelf {
			a, err := mailblocks.NormalizeDomain(n)
			if err != nil {
				return "", false
			}
			n = a
			break
		}
	}
	return n, checkName(n)
}
