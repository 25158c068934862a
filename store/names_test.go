package store

import (
	"path/filepath"
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

// FuzzValidateFolderName checks that an accepted name, joined to a data
// directory, never leaves it and has no control characters.
func FuzzValidateFolderName(f *testing.F) {
	for _, s := range []string{"INBOX", "a/b", "../x", "a/./b", "\x00", "Entwürfe", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateFolderName(name) != nil {
			return
		}
		root := "/data/user"
		p := filepath.Join(root, name)
		if !strings.HasPrefix(p, root+"/") {
			t.Fatalf("%q escapes: %q", name, p)
		}
		if filepath.Clean(p) != p {
			t.Fatalf("%q is not clean", name)
		}
		for _, r := range name {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("%q has a control character", name)
			}
		}
		c := CanonicalFolderName(name)
		if ValidateFolderName(c) != nil {
			t.Fatalf("canonical form %q of valid %q is invalid", c, name)
		}
	})
}

// FuzzCanonicalAddress checks that canonical addresses are stable and
// usable as file names.
func FuzzCanonicalAddress(f *testing.F) {
	for _, s := range []string{"bob@example.org", "Jörg@Bücher.example", `"a b"@x.y`, "../x@y", "a@b@c", "x@[1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		c, err := CanonicalAddress(addr)
		if err != nil {
			return
		}
		c2, err := CanonicalAddress(c)
		if err != nil || c2 != c {
			t.Fatalf("%q → %q → %q, %v: not idempotent", addr, c, c2, err)
		}
		local, dom, err := SplitCanonical(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{local, dom} {
			if part == "." || part == ".." || strings.ContainsAny(part, "/\\\x00") {
				t.Fatalf("%q: unsafe part %q", addr, part)
			}
		}
	})
}

func FuzzCheckPassword(f *testing.F) {
	h, _ := cheapHash("pw")
	f.Add(h, "pw")
	f.Add("$2a$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "pw")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "x")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		if i := strings.Index(hash, "m="); i >= 0 && len(strings.TrimLeft(hash[i+2:], "0123456789")) < len(hash[i+2:])-4 {
			return // more than 9999 KiB: keep each run cheap
		}
		if hash == pw && CheckPassword(hash, pw) {
			t.Fatalf("plaintext %q accepted", pw)
		}
	})
}
