package store

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
)

// testDirectory builds a directory exercising every kind of entry.
func testDirectory(t *testing.T) *DirectoryData {
	t.Helper()
	d := &DirectoryData{}
	require.NoError(t, d.SetDefaultDomain("Example.ORG"))
	require.NoError(t, d.AddDomain("example.org"))
	require.NoError(t, d.AddDomain("other.test"))
	require.NoError(t, d.AddDomain("bücher.example"))
	for _, u := range []string{"alice@example.org", "Bob@Example.org", "carol@other.test", "jörg@bücher.example"} {
		_, err := d.AddUser(u, "pw-"+u, Quota{}, cheapHash)
		require.NoError(t, err)
	}
	require.NoError(t, d.SetAlias("postmaster@example.org", "alice@example.org"))
	require.NoError(t, d.SetAlias("fwd@example.org", "someone@remote.test"))
	require.NoError(t, d.SetAlias("chain@example.org", "postmaster@example.org"))
	require.NoError(t, d.SetAlias("dangling@example.org", "nobody@example.org"))
	require.NoError(t, d.SetAlias("bob+special@example.org", "carol@other.test"))
	require.NoError(t, d.SetList("team@example.org", []string{"alice@example.org", "BOB@example.org", "bob@example.org", "x@remote.test", "postmaster@example.org"}))
	require.NoError(t, d.SetList("all@example.org", []string{"team@example.org", "carol@other.test", "all@example.org"}))
	require.NoError(t, d.SetAlias("loop1@example.org", "loop2@example.org"))
	require.NoError(t, d.SetAlias("loop2@example.org", "loop1@example.org"))
	require.NoError(t, d.SetCatchAll("other.test", "carol@other.test"))
	return d
}

func TestLookup(t *testing.T) {
	d := testDirectory(t)
	folders := map[string]bool{"bob@example.org/Lists": true, "bob@example.org/INBOX": true}
	hasFolder := func(user, folder string) bool { return folders[user+"/"+folder] }

	tests := []struct {
		addr   string
		kind   LookupKind
		users  []string
		remote []string
		folder string
	}{
		{"alice@example.org", LookupLocal, []string{"alice@example.org"}, nil, ""},
		{"ALICE@EXAMPLE.ORG", LookupLocal, []string{"alice@example.org"}, nil, ""},
		{"bob@example.org", LookupLocal, []string{"bob@example.org"}, nil, ""},
		{"jörg@xn--bcher-kva.example", LookupLocal, []string{"jörg@xn--bcher-kva.example"}, nil, ""},
		{"Jörg@Bücher.example", LookupLocal, []string{"jörg@xn--bcher-kva.example"}, nil, ""},
		{"nobody@example.org", LookupUnknown, nil, nil, ""},
		{"bob@elsewhere.test", LookupNotOurDomain, nil, nil, ""},
		{"bob@example.org.", LookupLocal, []string{"bob@example.org"}, nil, ""},
		// plus-addressing
		{"bob+Lists@example.org", LookupLocal, []string{"bob@example.org"}, nil, "Lists"},
		{"bob+lists@example.org", LookupLocal, []string{"bob@example.org"}, nil, ""},
		{"bob+nosuch@example.org", LookupLocal, []string{"bob@example.org"}, nil, ""},
		{"bob+inbox@example.org", LookupLocal, []string{"bob@example.org"}, nil, "INBOX"},
		{"bob+../x@example.org", LookupUnknown, nil, nil, ""}, // "/" refused in local part below
		{"bob+a+b@example.org", LookupLocal, []string{"bob@example.org"}, nil, ""},
		{"+bob@example.org", LookupUnknown, nil, nil, ""},
		{"nobody+x@example.org", LookupUnknown, nil, nil, ""},
		{"bob+special@example.org", LookupLocal, []string{"carol@other.test"}, nil, ""},
		{"postmaster+Lists@example.org", LookupLocal, []string{"alice@example.org"}, nil, ""},
		// aliases
		{"postmaster@example.org", LookupLocal, []string{"alice@example.org"}, nil, ""},
		{"chain@example.org", LookupLocal, []string{"alice@example.org"}, nil, ""},
		{"fwd@example.org", LookupLocal, nil, []string{"someone@remote.test"}, ""},
		{"dangling@example.org", LookupUnknown, nil, nil, ""},
		{"loop1@example.org", LookupUnknown, nil, nil, ""},
		// lists: recursive, deduplicated, self-reference ignored
		{"team@example.org", LookupLocal, []string{"alice@example.org", "bob@example.org"}, []string{"x@remote.test"}, ""},
		{"all@example.org", LookupLocal, []string{"alice@example.org", "bob@example.org", "carol@other.test"}, []string{"x@remote.test"}, ""},
		// catch-all
		{"whoever@other.test", LookupLocal, []string{"carol@other.test"}, nil, ""},
		{"whoever+x@OTHER.test", LookupLocal, []string{"carol@other.test"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if tt.addr == "bob+../x@example.org" {
				_, err := d.Lookup(tt.addr, hasFolder)
				require.ErrorIs(t, err, ErrBadName)
				return
			}
			got, err := d.Lookup(tt.addr, hasFolder)
			require.NoError(t, err)
			assert.Equal(t, tt.kind, got.Kind)
			assert.Equal(t, tt.users, got.Users)
			assert.Equal(t, tt.remote, got.Remote)
			assert.Equal(t, tt.folder, got.Folder)
		})
	}
}

func TestLookupNilHasFolder(t *testing.T) {
	d := testDirectory(t)
	got, err := d.Lookup("bob+Lists@example.org", nil)
	require.NoError(t, err)
	assert.Equal(t, "", got.Folder)
}

func TestLookupBadSyntax(t *testing.T) {
	d := testDirectory(t)
	for _, addr := range []string{"", "bob", "bob@", "@example.org", "a/b@example.org", "x\x00@example.org", "bob@[192.0.2.1]"} {
		_, err := d.Lookup(addr, nil)
		assert.ErrorIs(t, err, ErrBadName, "%q", addr)
		assert.ErrorIs(t, err, mailblocks.ErrBadDestinationSyntax, "%q", addr)
	}
}

func TestLookupPlusSeparator(t *testing.T) {
	d := testDirectory(t)
	d.PlusSeparator = "-"
	got, err := d.Lookup("bob-Lists@example.org", func(string, string) bool { return true })
	require.NoError(t, err)
	assert.Equal(t, []string{"bob@example.org"}, got.Users)
	assert.Equal(t, "Lists", got.Folder)
	got, err = d.Lookup("bob+Lists@example.org", nil)
	require.NoError(t, err)
	assert.Equal(t, LookupUnknown, got.Kind)
}

func TestLookupDeepNesting(t *testing.T) {
	d := &DirectoryData{}
	_, err := d.AddUser("end@example.org", "", Quota{}, nil)
	require.NoError(t, err)
	n := MaxExpansionDepth + 5
	for i := range n {
		require.NoError(t, d.SetAlias(fmt.Sprintf("a%d@example.org", i), fmt.Sprintf("a%d@example.org", i+1)))
	}
	require.NoError(t, d.SetAlias(fmt.Sprintf("a%d@example.org", n), "end@example.org"))
	got, err := d.Lookup("a0@example.org", nil)
	require.NoError(t, err)
	assert.Equal(t, LookupUnknown, got.Kind, "expansion must stop at MaxExpansionDepth")
	got, err = d.Lookup(fmt.Sprintf("a%d@example.org", n-5), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"end@example.org"}, got.Users)
}

func TestLookupCatchAllLoop(t *testing.T) {
	d := &DirectoryData{}
	require.NoError(t, d.SetCatchAll("example.org", "nobody@example.org"))
	got, err := d.Lookup("x@example.org", nil)
	require.NoError(t, err)
	assert.Equal(t, LookupUnknown, got.Kind)
}

func TestAuthenticate(t *testing.T) {
	d := testDirectory(t)
	dummy := NewDummyHash(cheapHash)
	_, err := d.AddUser("nopw@example.org", "", Quota{}, cheapHash)
	require.NoError(t, err)
	tests := []struct {
		user, pw, want string
	}{
		{"alice@example.org", "pw-alice@example.org", "alice@example.org"},
		{"ALICE@Example.Org", "pw-alice@example.org", "alice@example.org"},
		{"alice", "pw-alice@example.org", "alice@example.org"},
		{"bob", "pw-Bob@Example.org", "bob@example.org"},
		{"carol@other.test", "pw-carol@other.test", "carol@other.test"},
		{"jörg@bücher.example", "pw-jörg@bücher.example", "jörg@xn--bcher-kva.example"},
		{"carol", "pw-carol@other.test", ""}, // not in the default domain
		{"alice", "wrong", ""},
		{"alice", "", ""},
		{"nobody", "pw-alice@example.org", ""},
		{"postmaster@example.org", "pw-alice@example.org", ""}, // aliases cannot log in
		{"nopw@example.org", "", ""},
		{"../alice", "x", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := d.Authenticate(tt.user, tt.pw, dummy)
			if tt.want == "" {
				assert.ErrorIs(t, err, ErrAuthFailed)
				assert.Equal(t, "", got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	d.DefaultDomain = ""
	_, err = d.Authenticate("alice", "pw-alice@example.org", dummy)
	assert.ErrorIs(t, err, ErrAuthFailed)
}

func TestDirectoryMutations(t *testing.T) {
	d := &DirectoryData{}
	c, err := d.AddUser("Dave@New.Example", "pw", Quota{Bytes: 10}, cheapHash)
	require.NoError(t, err)
	assert.Equal(t, "dave@new.example", c)
	assert.Equal(t, []string{"new.example"}, d.DomainList(), "a user's domain becomes local")
	rec, ok := d.User("DAVE@new.example")
	require.True(t, ok)
	assert.Equal(t, Quota{Bytes: 10}, rec.Quota)
	assert.NotContains(t, rec.PasswordHash, "pw")
	assert.True(t, CheckPassword(rec.PasswordHash, "pw"))

	_, err = d.AddUser("dave@new.example", "x", Quota{}, cheapHash)
	assert.ErrorIs(t, err, ErrUserExists)
	_, err = d.AddUser("x@new.example", "x", Quota{Bytes: -1}, cheapHash)
	assert.Error(t, err)
	for _, bad := range []string{"../x@new.example", "x@../etc", "x\x00@a.b", "nodomain"} {
		_, err = d.AddUser(bad, "x", Quota{}, cheapHash)
		assert.ErrorIs(t, err, ErrBadName, bad)
	}

	require.NoError(t, d.SetPassword("dave@new.example", "pw2", cheapHash))
	rec, _ = d.User("dave@new.example")
	assert.True(t, CheckPassword(rec.PasswordHash, "pw2"))
	assert.ErrorIs(t, d.SetPassword("nobody@new.example", "x", cheapHash), ErrNoSuchUser)
	require.NoError(t, d.SetQuota("dave@new.example", Quota{Messages: 3}))
	rec, _ = d.User("dave@new.example")
	assert.Equal(t, Quota{Messages: 3}, rec.Quota)
	assert.ErrorIs(t, d.SetQuota("nobody@new.example", Quota{}), ErrNoSuchUser)

	// An address is a user, an alias or a list, never two.
	assert.ErrorIs(t, d.SetAlias("dave@new.example", "x@y.z"), ErrUserExists)
	assert.ErrorIs(t, d.SetList("dave@new.example", []string{"x@y.z"}), ErrUserExists)
	require.NoError(t, d.SetAlias("al@new.example", "dave@new.example"))
	require.NoError(t, d.SetAlias("al@new.example", "other@new.example"), "replacing an alias")
	assert.ErrorIs(t, d.SetList("al@new.example", []string{"x@y.z"}), ErrUserExists)
	_, err = d.AddUser("al@new.example", "x", Quota{}, cheapHash)
	assert.ErrorIs(t, err, ErrUserExists)
	require.NoError(t, d.SetList("li@new.example", []string{"a@y.z", "A@Y.Z"}))
	assert.Equal(t, []string{"a@y.z"}, d.Lists["li@new.example"])
	assert.ErrorIs(t, d.SetAlias("li@new.example", "x@y.z"), ErrUserExists)
	assert.ErrorIs(t, d.SetAlias("x@new.example", "../bad"), ErrBadName)
	assert.ErrorIs(t, d.SetList("y@new.example", []string{"ok@y.z", "bad"}), ErrBadName)
	assert.ErrorIs(t, d.SetCatchAll("new.example", "bad"), ErrBadName)
	assert.ErrorIs(t, d.SetCatchAll("../x", "a@b.c"), ErrBadName)
	require.NoError(t, d.SetCatchAll("Catch.Example", "dave@new.example"))
	assert.True(t, d.IsLocalDomain("catch.example"))
	// Remote targets keep the case of their local part.
	require.NoError(t, d.SetAlias("r@new.example", "Case.Sensitive@Remote.Test"))
	assert.Equal(t, "Case.Sensitive@remote.test", d.Aliases["r@new.example"])

	// Removal.
	require.NoError(t, d.SetAlias("al@new.example", ""))
	require.NoError(t, d.SetList("li@new.example", nil))
	require.NoError(t, d.SetCatchAll("catch.example", ""))
	assert.NotContains(t, d.Aliases, "al@new.example")
	assert.NotContains(t, d.Lists, "li@new.example")
	assert.NotContains(t, d.CatchAll, "catch.example")

	// Clone is deep.
	c2 := d.Clone()
	require.NoError(t, c2.SetList("z@new.example", []string{"q@y.z"}))
	c2.Users["dave@new.example"] = UserRecord{}
	assert.NotContains(t, d.Lists, "z@new.example")
	assert.Equal(t, "dave@new.example", d.Users["dave@new.example"].Address)

	u, err := d.DeleteUser("DAVE@new.example")
	require.NoError(t, err)
	assert.Equal(t, "dave@new.example", u)
	assert.Empty(t, d.UserList())
	_, err = d.DeleteUser("dave@new.example")
	assert.ErrorIs(t, err, ErrNoSuchUser)
	assert.ErrorIs(t, d.AddDomain("a..b"), ErrBadName)
	assert.ErrorIs(t, d.SetDefaultDomain("a..b"), ErrBadName)
}

func TestDirectoryValidate(t *testing.T) {
	d := testDirectory(t)
	require.NoError(t, d.Validate())
	require.NoError(t, (&DirectoryData{}).Validate(), "the zero value is valid")

	tests := map[string]func(d *DirectoryData){
		"default domain": func(d *DirectoryData) { d.DefaultDomain = "Example.org" },
		"plus separator": func(d *DirectoryData) { d.PlusSeparator = "/" },
		"domain":         func(d *DirectoryData) { d.Domains["../etc"] = true },
		"domain case":    func(d *DirectoryData) { d.Domains["EXAMPLE.org"] = true },
		"user key":       func(d *DirectoryData) { d.Users["../x@example.org"] = UserRecord{Address: "../x@example.org"} },
		"user case":      func(d *DirectoryData) { d.Users["X@example.org"] = UserRecord{Address: "X@example.org"} },
		"user address":   func(d *DirectoryData) { d.Users["x@example.org"] = UserRecord{Address: "y@example.org"} },
		"user quota": func(d *DirectoryData) {
			d.Users["x@example.org"] = UserRecord{Address: "x@example.org", Quota: Quota{Bytes: -1}}
		},
		"alias key":        func(d *DirectoryData) { d.Aliases["a/b@example.org"] = "alice@example.org" },
		"alias target":     func(d *DirectoryData) { d.Aliases["a@example.org"] = "nope" },
		"list key":         func(d *DirectoryData) { d.Lists["L@example.org"] = []string{"alice@example.org"} },
		"list member":      func(d *DirectoryData) { d.Lists["l@example.org"] = []string{"alice@example.org", "x\x00@y.z"} },
		"catch-all domain": func(d *DirectoryData) { d.CatchAll["a..b"] = "alice@example.org" },
		"catch-all target": func(d *DirectoryData) { d.CatchAll["example.org"] = "@" },
	}
	for name, corrupt := range tests {
		t.Run(name, func(t *testing.T) {
			d := testDirectory(t)
			corrupt(d)
			assert.ErrorIs(t, d.Validate(), ErrBadName)
		})
	}
}
