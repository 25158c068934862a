package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
)

func (r *runner) folders(t *testing.T) {
	t.Run("DefaultSpecialUse", func(t *testing.T) {
		f := r.setup(t)
		fs, err := f.mailbox(alice).Folders(f.ctx)
		require.NoError(t, err)
		require.NotEmpty(t, fs)
		assert.Equal(t, "INBOX", fs[0].Name, "INBOX first")
		got := map[string]store.SpecialUse{}
		for _, fi := range fs {
			got[fi.Name] = fi.SpecialUse
		}
		for _, df := range store.DefaultFolders {
			use, ok := got[df.Name]
			if assert.True(t, ok, "default folder %s", df.Name) {
				assert.Equal(t, df.Use, use, df.Name)
			}
		}
		for i := 2; i < len(fs); i++ {
			assert.Less(t, fs[i-1].Name, fs[i].Name, "sorted by name after INBOX")
		}
	})

	t.Run("Create", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		require.NoError(t, mb.CreateFolder(f.ctx, "Work", ""))
		require.NoError(t, mb.CreateFolder(f.ctx, "Projects/2026/Q4", ""), "missing parents are created")
		require.NoError(t, mb.CreateFolder(f.ctx, "Entwürfe", ""))
		require.NoError(t, mb.CreateFolder(f.ctx, "Everything", store.SpecialAll))
		names := f.folderNames(mb)
		for _, n := range []string{"Work", "Projects", "Projects/2026", "Projects/2026/Q4", "Entwürfe", "Everything"} {
			assert.Contains(t, names, n)
		}
		assert.ErrorIs(t, mb.CreateFolder(f.ctx, "Work", ""), store.ErrFolderExists)
		assert.ErrorIs(t, mb.CreateFolder(f.ctx, "INBOX", ""), store.ErrFolderExists)
		assert.ErrorIs(t, mb.CreateFolder(f.ctx, "inbox", ""), store.ErrFolderExists, "INBOX is case-insensitive")
		assert.ErrorIs(t, mb.CreateFolder(f.ctx, "Odd", "\\Trash\nINBOX\t\\Sent"), store.ErrBadName, "special use outside RFC 6154")
		assert.NotContains(t, f.folderNames(mb), "Odd")
		fs, err := mb.Folders(f.ctx)
		require.NoError(t, err)
		for _, fi := range fs {
			if fi.Name == "Everything" {
				assert.Equal(t, store.SpecialAll, fi.SpecialUse)
			}
		}
		// A new folder is empty, with UIDNEXT 1 or more and a UIDVALIDITY.
		st := f.status(f.folder(mb, "Projects/2026/Q4"))
		assert.Zero(t, st.Messages)
		assert.NotZero(t, st.UIDValidity)
		assert.NotZero(t, st.UIDNext)
		// Folder names are per user.
		assert.NotContains(t, f.folderNames(f.mailbox(bob)), "Work")
	})

	t.Run("InboxAnyCase", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		uid := f.deliver(alice, msg("x"), store.DeliverOptions{})
		fo := f.folder(mb, "iNbOx")
		assert.Equal(t, "INBOX", fo.Name())
		assert.Equal(t, []store.UID{uid}, f.uids(fo))
	})

	t.Run("Delete", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		assert.ErrorIs(t, mb.DeleteFolder(f.ctx, "INBOX"), store.ErrNotPermitted)
		assert.ErrorIs(t, mb.DeleteFolder(f.ctx, "inbox"), store.ErrNotPermitted)
		assert.ErrorIs(t, mb.DeleteFolder(f.ctx, "Nope"), store.ErrNoSuchFolder)
		require.NoError(t, mb.CreateFolder(f.ctx, "A/B", ""))
		fa := f.folder(mb, "A")
		f.append(fa, msg("in A"))
		require.NoError(t, mb.DeleteFolder(f.ctx, "A"))
		names := f.folderNames(mb)
		assert.NotContains(t, names, "A")
		assert.Contains(t, names, "A/B", "children are kept (RFC 3501 6.3.4)")
		_, err := mb.Folder(f.ctx, "A")
		assert.ErrorIs(t, err, store.ErrNoSuchFolder)
		_, err = fa.List(f.ctx)
		assert.ErrorIs(t, err, store.ErrNoSuchFolder, "an open handle sees the deletion")
		require.NoError(t, mb.DeleteFolder(f.ctx, "Trash"), "special-use folders can be deleted")
		u, err := mb.Usage(f.ctx)
		require.NoError(t, err)
		assert.Zero(t, u.Messages, "deleted messages leave the usage")
	})

	t.Run("Rename", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		require.NoError(t, mb.CreateFolder(f.ctx, "Old/Child/Grandchild", ""))
		old := f.folder(mb, "Old")
		uid := f.append(old, msg("kept"), store.FlagSeen)
		f.append(f.folder(mb, "Old/Child"), msg("child"))
		v := f.status(old).UIDValidity

		require.NoError(t, mb.RenameFolder(f.ctx, "Old", "New"))
		names := f.folderNames(mb)
		for _, n := range []string{"Old", "Old/Child", "Old/Child/Grandchild"} {
			assert.NotContains(t, names, n)
		}
		for _, n := range []string{"New", "New/Child", "New/Child/Grandchild"} {
			assert.Contains(t, names, n)
		}
		nf := f.folder(mb, "New")
		l := f.list(nf)
		require.Len(t, l, 1)
		assert.Equal(t, []string{store.FlagSeen}, l[0].Flags)
		assert.Equal(t, msg("kept"), f.read(nf, l[0].UID))
		if l[0].UID == uid {
			assert.Equal(t, v, f.status(nf).UIDValidity, "same UIDs imply the same UIDVALIDITY")
		}
		nc := f.folder(mb, "New/Child")
		cl := f.list(nc)
		require.Len(t, cl, 1)
		assert.Equal(t, msg("child"), f.read(nc, cl[0].UID), "the child's messages moved with it")

		require.NoError(t, mb.CreateFolder(f.ctx, "Other", ""))
		assert.ErrorIs(t, mb.RenameFolder(f.ctx, "New", "Other"), store.ErrFolderExists)
		assert.ErrorIs(t, mb.RenameFolder(f.ctx, "New", "INBOX"), store.ErrFolderExists)
		assert.ErrorIs(t, mb.RenameFolder(f.ctx, "Missing", "X"), store.ErrNoSuchFolder)
		// A folder cannot become its own descendant (Dovecot: "Can't
		// rename mailbox under itself").
		assert.ErrorIs(t, mb.RenameFolder(f.ctx, "New", "New/Deeper"), store.ErrNotPermitted)
		assert.ErrorIs(t, mb.RenameFolder(f.ctx, "New", "New/Child/X"), store.ErrNotPermitted)
		assert.Contains(t, f.folderNames(mb), "New/Child/Grandchild", "nothing moved")
		require.NoError(t, mb.RenameFolder(f.ctx, "New/Child", "Top/Moved"), "parents of the target are created")
		assert.Contains(t, f.folderNames(mb), "Top/Moved/Grandchild")
	})

	t.Run("RenameInbox", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		require.NoError(t, mb.CreateFolder(f.ctx, "INBOX/Sub", ""))
		f.deliver(alice, msg("one"), store.DeliverOptions{})
		f.deliver(alice, msg("two"), store.DeliverOptions{Flags: []string{store.FlagFlagged}})
		inbox := f.folder(mb, "INBOX")
		before := f.status(inbox)

		require.NoError(t, mb.RenameFolder(f.ctx, "INBOX", "Old Mail"))
		// INBOX is the exception: renaming it moves its messages, so a
		// child of INBOX is a fine destination.
		require.NoError(t, mb.RenameFolder(f.ctx, "INBOX", "INBOX/Older"))
		// RFC 3501 6.3.5: messages move to the new folder, INBOX stays
		// (empty), its inferiors are unaffected.
		names := f.folderNames(mb)
		assert.Contains(t, names, "INBOX")
		assert.Contains(t, names, "INBOX/Sub")
		assert.Contains(t, names, "Old Mail")
		assert.Empty(t, f.list(f.folder(mb, "INBOX")))
		moved := f.list(f.folder(mb, "Old Mail"))
		require.Len(t, moved, 2)
		var bodies []string
		for _, m := range moved {
			bodies = append(bodies, f.read(f.folder(mb, "Old Mail"), m.UID))
		}
		assert.ElementsMatch(t, []string{msg("one"), msg("two")}, bodies)
		after := f.status(f.folder(mb, "INBOX"))
		if after.UIDValidity == before.UIDValidity {
			assert.GreaterOrEqual(t, after.UIDNext, before.UIDNext, "INBOX UIDs are not reused")
		}
		uid := f.deliver(alice, msg("three"), store.DeliverOptions{})
		assert.Equal(t, []store.UID{uid}, f.uids(f.folder(mb, "INBOX")))
	})

	t.Run("Subscribe", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		require.NoError(t, mb.CreateFolder(f.ctx, "News", ""))
		sub := func(name string) bool {
			fs, err := mb.Folders(f.ctx)
			require.NoError(t, err)
			for _, fi := range fs {
				if fi.Name == name {
					return fi.Subscribed
				}
			}
			t.Fatalf("folder %s not listed", name)
			return false
		}
		require.NoError(t, mb.SetSubscribed(f.ctx, "News", true))
		assert.True(t, sub("News"))
		require.NoError(t, mb.SetSubscribed(f.ctx, "News", false))
		assert.False(t, sub("News"))
		require.NoError(t, mb.SetSubscribed(f.ctx, "inbox", true))
		assert.True(t, sub("INBOX"))
	})
}
