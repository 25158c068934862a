package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/store"
)

func (r *runner) directory(t *testing.T) {
	t.Run("Domains", func(t *testing.T) {
		f := r.setup(t)
		require.NoError(t, f.s.AddDomain(f.ctx, "Other.Test"))
		require.NoError(t, f.s.AddDomain(f.ctx, "other.test"), "adding a domain twice is not an error")
		require.NoError(t, f.s.AddDomain(f.ctx, "bücher.example"))
		ds, err := f.s.Domains(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{DefaultDomain, "other.test", "xn--bcher-kva.example"}, ds)
	})

	t.Run("Users", func(t *testing.T) {
		f := r.setup(t)
		require.NoError(t, f.s.AddUser(f.ctx, "Carol@Example.ORG", "pw", store.Quota{}))
		us, err := f.s.Users(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{alice, bob, "carol@example.org"}, us)
		err = f.s.AddUser(f.ctx, "CAROL@example.org", "pw", store.Quota{})
		assert.ErrorIs(t, err, store.ErrUserExists)

		mb := f.mailbox("carol@example.org")
		assert.Equal(t, "carol@example.org", mb.User())

		_, err = f.s.Mailbox(f.ctx, "nobody@example.org")
		assert.ErrorIs(t, err, store.ErrNoSuchUser)
		assert.ErrorIs(t, err, mailblocks.ErrNoSuchUser, "ErrNoSuchUser is a 550 5.1.1")

		require.NoError(t, f.s.DeleteUser(f.ctx, "carol@example.org"))
		_, err = f.s.Mailbox(f.ctx, "carol@example.org")
		assert.ErrorIs(t, err, store.ErrNoSuchUser)
		assert.ErrorIs(t, f.s.DeleteUser(f.ctx, "carol@example.org"), store.ErrNoSuchUser)
		lk, err := f.s.LookupRecipient(f.ctx, "carol@example.org")
		require.NoError(t, err)
		assert.Equal(t, store.LookupUnknown, lk.Kind)
		_, err = f.s.Authenticate(f.ctx, "carol@example.org", "pw")
		assert.ErrorIs(t, err, store.ErrAuthFailed)
		us, err = f.s.Users(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{alice, bob}, us)

		// A user created again starts empty.
		require.NoError(t, f.s.AddUser(f.ctx, "carol@example.org", "pw", store.Quota{}))
		f.deliver("carol@example.org", msg("one"), store.DeliverOptions{})
		require.NoError(t, f.s.DeleteUser(f.ctx, "carol@example.org"))
		require.NoError(t, f.s.AddUser(f.ctx, "carol@example.org", "pw", store.Quota{}))
		assert.Empty(t, f.list(f.folder(f.mailbox("carol@example.org"), "INBOX")))
	})

	t.Run("Lookup", func(t *testing.T) {
		f := r.setup(t)
		ctx := f.ctx
		require.NoError(t, f.s.AddDomain(ctx, "other.test"))
		require.NoError(t, f.s.AddUser(ctx, "carol@other.test", "pw", store.Quota{}))
		require.NoError(t, f.s.SetAlias(ctx, "postmaster@example.org", alice))
		require.NoError(t, f.s.SetAlias(ctx, "fwd@example.org", "Someone@Remote.Test"))
		require.NoError(t, f.s.SetList(ctx, "team@example.org", []string{alice, "BOB@example.org", "postmaster@example.org", "x@remote.test"}))
		require.NoError(t, f.s.SetList(ctx, "all@example.org", []string{"team@example.org", "carol@other.test", "all@example.org"}))
		require.NoError(t, f.s.SetAlias(ctx, "loop1@example.org", "loop2@example.org"))
		require.NoError(t, f.s.SetAlias(ctx, "loop2@example.org", "loop1@example.org"))
		require.NoError(t, f.s.SetCatchAll(ctx, "other.test", "carol@other.test"))
		require.NoError(t, f.mailbox(bob).CreateFolder(ctx, "Lists", ""))

		tests := []struct {
			addr   string
			kind   store.LookupKind
			users  []string
			remote []string
			folder string
		}{
			{alice, store.LookupLocal, []string{alice}, nil, ""},
			{"Alice@EXAMPLE.org", store.LookupLocal, []string{alice}, nil, ""},
			{"nobody@example.org", store.LookupUnknown, nil, nil, ""},
			{"alice@elsewhere.test", store.LookupNotOurDomain, nil, nil, ""},
			{"postmaster@example.org", store.LookupLocal, []string{alice}, nil, ""},
			{"fwd@example.org", store.LookupLocal, nil, []string{"Someone@remote.test"}, ""},
			{"team@example.org", store.LookupLocal, []string{alice, bob}, []string{"x@remote.test"}, ""},
			{"all@example.org", store.LookupLocal, []string{alice, bob, "carol@other.test"}, []string{"x@remote.test"}, ""},
			{"loop1@example.org", store.LookupUnknown, nil, nil, ""},
			{"anything@other.test", store.LookupLocal, []string{"carol@other.test"}, nil, ""},
			{"bob+Lists@example.org", store.LookupLocal, []string{bob}, nil, "Lists"},
			{"bob+nosuch@example.org", store.LookupLocal, []string{bob}, nil, ""},
			{"nobody+Lists@example.org", store.LookupUnknown, nil, nil, ""},
		}
		for _, tt := range tests {
			t.Run(tt.addr, func(t *testing.T) {
				lk, err := f.s.LookupRecipient(ctx, tt.addr)
				require.NoError(t, err)
				assert.Equal(t, tt.kind, lk.Kind)
				assert.Equal(t, tt.users, lk.Users)
				assert.Equal(t, tt.remote, lk.Remote)
				assert.Equal(t, tt.folder, lk.Folder)
			})
		}

		// Plus-addressing delivery lands in the folder the lookup names.
		lk, err := f.s.LookupRecipient(ctx, "bob+Lists@example.org")
		require.NoError(t, err)
		uid := f.deliver(lk.Users[0], msg("plus"), store.DeliverOptions{Folder: lk.Folder})
		assert.Equal(t, []store.UID{uid}, f.uids(f.folder(f.mailbox(bob), "Lists")))

		// Removal.
		require.NoError(t, f.s.SetAlias(ctx, "postmaster@example.org", ""))
		require.NoError(t, f.s.SetList(ctx, "team@example.org", nil))
		require.NoError(t, f.s.SetCatchAll(ctx, "other.test", ""))
		for _, a := range []string{"postmaster@example.org", "team@example.org", "anything@other.test"} {
			lk, err := f.s.LookupRecipient(ctx, a)
			require.NoError(t, err)
			assert.Equal(t, store.LookupUnknown, lk.Kind, a)
		}

		// Syntax errors are errors.
		for _, a := range []string{"", "no-at-sign", "@example.org", "x@"} {
			_, err := f.s.LookupRecipient(ctx, a)
			assert.Error(t, err, "%q", a)
		}
	})

	t.Run("AddressInUse", func(t *testing.T) {
		f := r.setup(t)
		assert.ErrorIs(t, f.s.SetAlias(f.ctx, alice, bob), store.ErrUserExists)
		assert.ErrorIs(t, f.s.SetList(f.ctx, alice, []string{bob}), store.ErrUserExists)
		require.NoError(t, f.s.SetAlias(f.ctx, "al@example.org", bob))
		assert.ErrorIs(t, f.s.AddUser(f.ctx, "al@example.org", "pw", store.Quota{}), store.ErrUserExists)
	})

	t.Run("UnknownUserAdmin", func(t *testing.T) {
		f := r.setup(t)
		assert.ErrorIs(t, f.s.SetPassword(f.ctx, "nobody@example.org", "x"), store.ErrNoSuchUser)
		assert.ErrorIs(t, f.s.SetQuota(f.ctx, "nobody@example.org", store.Quota{Bytes: 1}), store.ErrNoSuchUser)
		_, err := f.s.Deliver(f.ctx, "nobody@example.org", strings.NewReader(msg("x")), store.DeliverOptions{})
		assert.ErrorIs(t, err, store.ErrNoSuchUser)
	})
}

func (r *runner) auth(t *testing.T) {
	f := r.setup(t)
	ctx := f.ctx
	require.NoError(t, f.s.AddDomain(ctx, "other.test"))
	require.NoError(t, f.s.AddUser(ctx, "carol@other.test", "carol-pw", store.Quota{}))
	tests := []struct {
		name, user, pw, want string
	}{
		{"full address", alice, alicePW, alice},
		{"case-insensitive address", "ALICE@Example.Org", alicePW, alice},
		{"default domain", "alice", alicePW, alice},
		{"default domain other user", "bob", bobPW, bob},
		{"other domain", "carol@other.test", "carol-pw", "carol@other.test"},
		{"other domain needs @", "carol", "carol-pw", ""},
		{"wrong password", alice, "wrong", ""},
		{"password case", alice, strings.ToUpper(alicePW), ""},
		{"empty password", alice, "", ""},
		{"other user's password", alice, bobPW, ""},
		{"unknown user", "nobody@example.org", alicePW, ""},
		{"unknown user default domain", "nobody", alicePW, ""},
		{"not our domain", "alice@elsewhere.test", alicePW, ""},
		{"hostile username", "../alice", alicePW, ""},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.Authenticate(ctx, tt.user, tt.pw)
			if tt.want == "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, store.ErrAuthFailed), "want ErrAuthFailed, got %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("SetPassword", func(t *testing.T) {
		require.NoError(t, f.s.SetPassword(ctx, alice, "new-pw"))
		_, err := f.s.Authenticate(ctx, alice, alicePW)
		assert.ErrorIs(t, err, store.ErrAuthFailed)
		got, err := f.s.Authenticate(ctx, "alice", "new-pw")
		require.NoError(t, err)
		assert.Equal(t, alice, got)
	})
	t.Run("AliasCannotLogIn", func(t *testing.T) {
		require.NoError(t, f.s.SetAlias(ctx, "pm@example.org", bob))
		_, err := f.s.Authenticate(ctx, "pm@example.org", bobPW)
		assert.ErrorIs(t, err, store.ErrAuthFailed)
	})
}

func (r *runner) hostile(t *testing.T) {
	f := r.setup(t)
	mb := f.mailbox(alice)
	folderNames := []string{
		"..", "../x", "a/../../b", "/etc", "/", "a/", "a//b", ".", "./a",
		"nul\x00x", "ctl\x01x", "nl\nx", "del\x7fx", "back\\slash", "",
		strings.Repeat("x", 5000), "\xff\xfe",
	}
	for _, n := range folderNames {
		t.Run("folder "+strings.ToValidUTF8(n[:min(len(n), 20)], "?"), func(t *testing.T) {
			assert.ErrorIs(t, mb.CreateFolder(f.ctx, n, ""), store.ErrBadName, "CreateFolder")
			assert.ErrorIs(t, mb.RenameFolder(f.ctx, "Archive", n), store.ErrBadName, "RenameFolder to")
			_, err := mb.Folder(f.ctx, n)
			assert.True(t, errors.Is(err, store.ErrBadName) || errors.Is(err, store.ErrNoSuchFolder), "Folder: %v", err)
			fo := f.folder(mb, "INBOX")
			_, err = fo.Copy(f.ctx, nil, n)
			assert.True(t, errors.Is(err, store.ErrBadName) || errors.Is(err, store.ErrNoSuchFolder), "Copy: %v", err)
		})
	}
	// Deliver with a hostile folder: refused, or delivered to INBOX (a
	// missing folder falls back to INBOX), never anywhere else.
	for _, n := range []string{"../../x", "/tmp/x", "a/../../../b"} {
		uid, err := f.s.Deliver(f.ctx, alice, strings.NewReader(msg("hostile")), store.DeliverOptions{Folder: n})
		if err != nil {
			assert.ErrorIs(t, err, store.ErrBadName)
			continue
		}
		assert.Contains(t, f.uids(f.folder(mb, "INBOX")), uid, "folder %q", n)
	}
	names := f.folderNames(mb)
	for _, df := range store.DefaultFolders {
		assert.Contains(t, names, df.Name)
	}
	assert.Len(t, names, len(store.DefaultFolders), "no folder was created: %v", names)

	users := []string{
		"../x@example.org", "x/y@example.org", `x\y@example.org`, "..@example.org", ".@example.org",
		"x\x00@example.org", "x\n@example.org", "x@../etc", "x@exa/mple.org", "x@", "@example.org",
		"nodomain", "", strings.Repeat("x", 300) + "@example.org",
	}
	for _, u := range users {
		err := f.s.AddUser(f.ctx, u, "pw", store.Quota{})
		assert.ErrorIs(t, err, store.ErrBadName, "AddUser %q", u)
	}
	for _, d := range []string{"../x", "a/b", "", "x\x00y", "a..b"} {
		assert.ErrorIs(t, f.s.AddDomain(f.ctx, d), store.ErrBadName, "AddDomain %q", d)
	}
	us, err := f.s.Users(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{alice, bob}, us)
}
