package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCanonicalFolderName(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":       "INBOX",
		"inbox":       "INBOX",
		"InBoX":       "INBOX",
		"inbox/Work":  "INBOX/Work",
		"Inboxes":     "Inboxes",
		"Sent":        "Sent",
		"Work/inbox":  "Work/inbox",
		"":            "",
		"inbox/":      "INBOX/",
		"Entwürfe/ab": "Entwürfe/ab",
	} {
		assert.Equal(t, want, CanonicalFolderName(in), in)
	}
}

func TestValidateFolderName(t *testing.T) {
	good := []string{"INBOX", "Sent", "a/b/c", "Entwürfe", "with space", "a.b", ".hidden", "a..b", "%", strings.Repeat("x", 255)}
	for _, n := range good {
		assert.NoError(t, ValidateFolderName(n), n)
	}
	bad := []string{
		"", "..", ".", "../etc", "a/../b", "a/..", "/abs", "a/", "a//b", "a/./b",
		"nul\x00", "tab\tx", "nl\nx", "cr\rx", "del\x7f", "c1\u0085x", "back\\slash",
		"\xff\xfe", strings.Repeat("x", 256), strings.Repeat("a/", 600) + "a",
	}
	for _, n := range bad {
		err := ValidateFolderName(n)
		assert.ErrorIs(t, err, ErrBadName, "%q", n)
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Example.ORG", "example.org"},
		{"example.org.", "example.org"},
		{"localhost", "localhost"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"a-b.c0", "a-b.c0"},
	}
	for _, tt := range tests {
		got, err := NormalizeDomain(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	for _, in := range []string{"", ".", "a..b", "-a.b", "a-.b", "[192.0.2.1]", "a/b", "../x", "a b", "x\x00", strings.Repeat("a", 64) + ".b", strings.Repeat("abc.", 70) + "x", "a_b.c"} {
		_, err := NormalizeDomain(in)
		assert.ErrorIs(t, err, ErrBadName, "%q", in)
	}
}

func TestCanonicalAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Bob@Example.ORG", "bob@example.org"},
		{"bob+tag@example.org", "bob+tag@example.org"},
		{"Jörg@bücher.example", "jörg@xn--bcher-kva.example"},
		{`"John Doe"@example.org`, `"john doe"@example.org`},
		{"a.b-c_d@x.y", "a.b-c_d@x.y"},
	}
	for _, tt := range tests {
		got, err := CanonicalAddress(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	for _, in := range []string{
		"", "bob", "@example.org", "bob@", "../bob@example.org", "a/b@example.org", `a\b@example.org`,
		"..@example.org", ".@example.org", "bo\x00b@example.org", "bo\nb@example.org",
		strings.Repeat("a", 65) + "@example.org", "bob@[192.0.2.1]", "bob@exa mple.org", "bob@../etc",
	} {
		_, err := CanonicalAddress(in)
		assert.ErrorIs(t, err, ErrBadName, "%q", in)
	}
}
