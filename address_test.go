package mailblocks

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitAddress(t *testing.T) {
	tests := []struct {
		addr, local, domain string
		ok                  bool
	}{
		{"user@example.com", "user", "example.com", true},
		{"User.Name+tag@Example.COM", "User.Name+tag", "Example.COM", true},
		{`"john@home"@example.com`, `"john@home"`, "example.com", true},
		{`"a\"b@c"@example.com`, `"a\"b@c"`, "example.com", true},
		{`""@example.com`, `""`, "example.com", true},
		{"user@[192.0.2.1]", "user", "[192.0.2.1]", true},
		{"user@[IPv6:2001:db8::1]", "user", "[IPv6:2001:db8::1]", true},
		{"a@b@example.com", "a@b", "example.com", true},
		{"δοκιμή@παράδειγμα.δοκιμή", "δοκιμή", "παράδειγμα.δοκιμή", true},
		{"", "", "", false},
		{"user", "", "", false},
		{"@example.com", "", "", false},
		{"user@", "", "", false},
		{`"unterminated@example.com`, "", "", false},
		{`"quoted@"`, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			local, domain, err := SplitAddress(tt.addr)
			if !tt.ok {
				assert.ErrorIs(t, err, ErrBadAddress)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.local, local)
			assert.Equal(t, tt.domain, domain)
		})
	}
	assert.Equal(t, "example.com", DomainOf("u@EXAMPLE.com"))
	assert.Equal(t, "", DomainOf("nodomain"))
}

func TestValidateLocalPart(t *testing.T) {
	tests := []struct {
		local string
		ok    bool
	}{
		{"user", true},
		{"first.last", true},
		{"!#$%&'*+-/=?^_`{|}~", true},
		{"用户", true},
		{"jörg.müller", true},
		{`"quoted string"`, true},
		{`"with \"escaped\" quote"`, true},
		{`"back\\slash"`, true},
		{`""`, true},
		{`"ünïcode quoted"`, true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{strings.Repeat("ä", 33), false}, // 66 octets
		{"", false},
		{".leading", false},
		{"trailing.", false},
		{"double..dot", false},
		{"sp ace", false},
		{"paren(", false},
		{"comma,", false},
		{`a"b`, false},
		{`"unterminated`, false},
		{`"bad"quote"`, false},
		{`"trailing backslash\"`, false},
		{"\"tab\there\"", false},
		{"ctrl\x01", false},
		{"bad\xffutf8", false},
		{"\u0085nel", false},
	}
	for _, tt := range tests {
		t.Run(tt.local, func(t *testing.T) {
			err := ValidateLocalPart(tt.local)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrBadAddress)
			}
		})
	}
}

func TestQuoteUnquoteLocalPart(t *testing.T) {
	tests := []struct{ quoted, value string }{
		{"john.doe", "john.doe"},
		{`"john doe"`, "john doe"},
		{`"a\"b"`, `a"b`},
		{`"a\\b"`, `a\b`},
		{`".dot"`, ".dot"},
		{`""`, ""},
	}
	for _, tt := range tests {
		v, err := UnquoteLocalPart(tt.quoted)
		require.NoError(t, err, tt.quoted)
		assert.Equal(t, tt.value, v)
		assert.Equal(t, tt.quoted, QuoteLocalPart(tt.value))
	}
	v, err := UnquoteLocalPart(`"john"`)
	require.NoError(t, err)
	assert.Equal(t, "john", v, "an unnecessary quoting names the same mailbox")
	v, err = UnquoteLocalPart(`"\j\o\h\n"`)
	require.NoError(t, err)
	assert.Equal(t, "john", v)
	_, err = UnquoteLocalPart("a..b")
	assert.ErrorIs(t, err, ErrBadAddress)
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, ascii, unicode string
		ok                 bool
	}{
		{"example.com", "example.com", "example.com", true},
		{"EXAMPLE.Com.", "example.com", "example.com", true},
		{"bücher.de", "xn--bcher-kva.de", "bücher.de", true},
		{"BÜCHER.de", "xn--bcher-kva.de", "bücher.de", true},
		{"XN--BCHER-KVA.DE", "xn--bcher-kva.de", "bücher.de", true},
		{"παράδειγμα.δοκιμή", "xn--hxajbheg2az3al.xn--jxalpdlp", "παράδειγμα.δοκιμή", true},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah", "例え.テスト", true},
		{"mx-1.sub.example", "mx-1.sub.example", "mx-1.sub.example", true},
		{"[192.0.2.1]", "[192.0.2.1]", "[192.0.2.1]", true},
		{"[IPv6:2001:DB8:0:0::1]", "[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", true},
		{"[ipv6:::1]", "[IPv6:::1]", "[IPv6:::1]", true},
		{strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com", true},
		{strings.Repeat("a", 64) + ".com", "", "", false},
		{strings.Repeat("abcdefghi.", 26), "", "", false}, // 259 octets
		{"", "", "", false},
		{".", "", "", false},
		{"a..b", "", "", false},
		{".example.com", "", "", false},
		{"-example.com", "", "", false},
		{"example-.com", "", "", false},
		{"under_score.com", "", "", false},
		{"sp ace.com", "", "", false},
		{"bad\xff.com", "", "", false},
		{"ex!mple.com", "", "", false},
		{"xn--invalid-.com", "", "", false},
		{"xn--abc.com", "", "", false},       // decodes to garbage
		{"xn--bcher-kva-.de", "", "", false}, // trailing hyphen
		{"xn--ls8h.com", "", "", false},      // a symbol (U+1F4A9), not a letter
		{"ab--cd.example", "ab--cd.example", "ab--cd.example", true},
		{"ü--x.example", "xn----x-goa.example", "ü--x.example", true},                 // hyphens in positions 2-3
		{"ab\u00e9--x.example", "xn--ab--x-csa.example", "ab\u00e9--x.example", true}, // positions 4-5
		{"\u0301a.example", "", "", false},                                            // leading combining mark
		{"a☃.example", "", "", false},                                                 // symbol
		{"[192.0.2.256]", "", "", false},
		{"[1.2.3]", "", "", false},
		{"[IPv6:192.0.2.1]", "", "", false},
		{"[2001:db8::1]", "", "", false}, // IPv6 needs its tag
		{"[IPv6:fe80::1%eth0]", "", "", false},
		{"[x400:foo]", "", "", false},
		{"[192.0.2.1", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := NormalizeDomain(tt.in)
			u, uerr := DomainToUnicode(tt.in)
			if !tt.ok {
				assert.ErrorIs(t, err, ErrBadAddress, "got %q", a)
				assert.ErrorIs(t, uerr, ErrBadAddress)
				return
			}
			require.NoError(t, err)
			require.NoError(t, uerr)
			assert.Equal(t, tt.ascii, a)
			assert.Equal(t, tt.unicode, u)
		})
	}
}

func TestULabelHyphens(t *testing.T) {
	// RFC 5891 4.2.3.1 forbids "--" in positions 3 and 4 of a U-label.
	_, err := NormalizeDomain("üb--er.example")
	assert.ErrorIs(t, err, ErrBadAddress)
	a, err := NormalizeDomain("über--x.example")
	require.NoError(t, err)
	u, err := DomainToUnicode(a)
	require.NoError(t, err)
	assert.Equal(t, "über--x.example", u)
}

func TestAddressLiteral(t *testing.T) {
	ip, ok := AddressLiteral("[192.0.2.1]")
	assert.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("192.0.2.1"), ip)
	ip, ok = AddressLiteral("[IPv6:2001:db8::1]")
	assert.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("2001:db8::1"), ip)
	for _, d := range []string{"example.com", "[]", "[IPv6:]", "192.0.2.1", "[::1]"} {
		_, ok = AddressLiteral(d)
		assert.False(t, ok, d)
	}
}

func TestCanonicalAddress(t *testing.T) {
	tests := []struct {
		in, out string
		ok      bool
		utf8    bool
	}{
		{"User@Example.COM", "User@example.com", true, false},
		{"jörg@Bücher.DE", "jörg@xn--bcher-kva.de", true, true},
		{"info@bücher.de", "info@xn--bcher-kva.de", true, false},
		{`"John Doe"@EXAMPLE.com`, `"John Doe"@example.com`, true, false},
		{"postmaster@[IPv6:2001:DB8::1]", "postmaster@[IPv6:2001:db8::1]", true, false},
		{"a@[192.0.2.1]", "a@[192.0.2.1]", true, false},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61), "", true, false},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62), "", false, false},
		{"no-at-sign", "", false, false},
		{"a..b@example.com", "", false, false},
		{"a@exa mple.com", "", false, false},
		{"a@", "", false, false},
		{"a@[1.2.3.4", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			out, err := CanonicalAddress(tt.in)
			if !tt.ok {
				assert.ErrorIs(t, err, ErrBadAddress)
				assert.ErrorIs(t, ValidateAddress(tt.in), ErrBadAddress)
				return
			}
			require.NoError(t, err)
			require.NoError(t, ValidateAddress(tt.in))
			if tt.out != "" {
				assert.Equal(t, tt.out, out)
			}
			assert.Equal(t, tt.utf8, NeedsSMTPUTF8(tt.in))
		})
	}
	assert.True(t, NeedsSMTPUTF8("ünsplittable"))
	assert.False(t, NeedsSMTPUTF8("plain"))
}

func FuzzSplitAddress(f *testing.F) {
	for _, s := range []string{"user@example.com", `"a@b"@c.example`, "u@[IPv6:::1]", "jörg@bücher.de", `"\"@x`, "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		local, domain, err := SplitAddress(addr)
		if err != nil {
			return
		}
		if local+"@"+domain != addr || local == "" || domain == "" {
			t.Fatalf("SplitAddress(%q) = %q, %q", addr, local, domain)
		}
		canon, err := CanonicalAddress(addr)
		if err != nil {
			return
		}
		// Canonicalisation is idempotent and keeps the local part.
		again, err := CanonicalAddress(canon)
		if err != nil || again != canon {
			t.Fatalf("CanonicalAddress(%q) = %q, then %q, %v", addr, canon, again, err)
		}
		l2, _, err := SplitAddress(canon)
		if err != nil || l2 != local {
			t.Fatalf("CanonicalAddress(%q) = %q changed the local part", addr, canon)
		}
		if NeedsSMTPUTF8(canon) != !IsASCII(canon) {
			t.Fatalf("NeedsSMTPUTF8(%q) but canonical form has a non-ASCII domain", canon)
		}
	})
}

func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.DE.", "xn--bcher-kva.de", "例え.テスト", "[192.0.2.1]", "[IPv6:2001:db8::1]", "a..b", "xn--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, domain string) {
		a, err := NormalizeDomain(domain)
		if err != nil {
			return
		}
		if !IsASCII(a) || strings.ToLower(a) != a && !strings.HasPrefix(a, "[IPv6:") {
			t.Fatalf("NormalizeDomain(%q) = %q: not lower-case ASCII", domain, a)
		}
		if again, err := NormalizeDomain(a); err != nil || again != a {
			t.Fatalf("NormalizeDomain(%q) = %q, then %q, %v", domain, a, again, err)
		}
		u, err := DomainToUnicode(a)
		if err != nil {
			t.Fatalf("DomainToUnicode(%q): %v", a, err)
		}
		if back, err := NormalizeDomain(u); err != nil || back != a {
			t.Fatalf("NormalizeDomain(DomainToUnicode(%q)) = %q, %v", a, back, err)
		}
	})
}

func FuzzPunycode(f *testing.F) {
	for _, s := range punySamples {
		f.Add(s.decoded)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc, err := punyEncode(s)
		if err != nil {
			return
		}
		dec, err := punyDecode(enc)
		if err != nil || dec != s {
			t.Fatalf("punyDecode(punyEncode(%q) = %q) = %q, %v", s, enc, dec, err)
		}
	})
}
