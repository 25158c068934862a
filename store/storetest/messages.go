package storetest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
)

func (r *runner) messages(t *testing.T) {
	t.Run("UIDs", func(t *testing.T) {
		f := r.setup(t)
		inbox := f.folder(f.mailbox(alice), "INBOX")
		st0 := f.status(inbox)
		var uids []store.UID
		for i := range 5 {
			uids = append(uids, f.deliver(alice, msg(string(rune('a'+i))), store.DeliverOptions{}))
		}
		assert.GreaterOrEqual(t, uids[0], st0.UIDNext, "first UID is at least the old UIDNEXT")
		for i := 1; i < len(uids); i++ {
			assert.Greater(t, uids[i], uids[i-1], "UIDs strictly ascend")
		}
		assert.Equal(t, uids, f.uids(inbox), "List is in ascending UID order")
		st := f.status(inbox)
		assert.Equal(t, 5, st.Messages)
		assert.Greater(t, st.UIDNext, uids[4])

		// Expunge the highest UIDs: they are never reused (RFC 3501 2.3.1.1).
		_, err := inbox.SetFlags(f.ctx, uids[3:], store.FlagsAdd, []string{store.FlagDeleted})
		require.NoError(t, err)
		gone, err := inbox.Expunge(f.ctx, nil)
		require.NoError(t, err)
		assert.Equal(t, uids[3:], gone)
		next := f.deliver(alice, msg("after"), store.DeliverOptions{})
		assert.Greater(t, next, uids[4], "UID of an expunged message is not reused")
		assert.GreaterOrEqual(t, f.status(inbox).UIDNext, next+1)
		// A new handle sees the same.
		assert.Equal(t, append(uids[:3:3], next), f.uids(f.folder(f.mailbox(alice), "INBOX")))

		_, err = inbox.Open(f.ctx, uids[4])
		assert.ErrorIs(t, err, store.ErrNoSuchMessage)
		_, err = inbox.Open(f.ctx, 999999)
		assert.ErrorIs(t, err, store.ErrNoSuchMessage)
	})

	t.Run("UIDValidity", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		require.NoError(t, mb.CreateFolder(f.ctx, "Tmp", ""))
		tmp := f.folder(mb, "Tmp")
		v1 := f.status(tmp).UIDValidity
		assert.NotZero(t, v1)
		f.append(tmp, msg("x"))
		assert.Equal(t, v1, f.status(tmp).UIDValidity, "stable across changes")
		assert.Equal(t, v1, f.status(f.folder(mb, "Tmp")).UIDValidity, "stable across handles")
		assert.Equal(t, v1, f.status(f.folder(f.mailbox(alice), "Tmp")).UIDValidity, "stable across mailbox handles")

		require.NoError(t, mb.DeleteFolder(f.ctx, "Tmp"))
		require.NoError(t, mb.CreateFolder(f.ctx, "Tmp", ""))
		v2 := f.status(f.folder(mb, "Tmp")).UIDValidity
		assert.NotZero(t, v2)
		assert.NotEqual(t, v1, v2, "a folder re-created with the same name has a new UIDVALIDITY")
		assert.Empty(t, f.list(f.folder(mb, "Tmp")))

		// Again, immediately: still different from both.
		require.NoError(t, mb.DeleteFolder(f.ctx, "Tmp"))
		require.NoError(t, mb.CreateFolder(f.ctx, "Tmp", ""))
		v3 := f.status(f.folder(mb, "Tmp")).UIDValidity
		assert.NotEqual(t, v2, v3)
		assert.NotEqual(t, v1, v3)
	})

	t.Run("Flags", func(t *testing.T) {
		f := r.setup(t)
		inbox := f.folder(f.mailbox(alice), "INBOX")
		u1 := f.append(inbox, msg("1"))
		u2 := f.append(inbox, msg("2"), `\seen`, "$Label1")
		u3 := f.append(inbox, msg("3"), store.FlagDraft)
		flags := func(uid store.UID) []string {
			for _, m := range f.list(inbox) {
				if m.UID == uid {
					return m.Flags
				}
			}
			t.Fatalf("UID %d not listed", uid)
			return nil
		}
		assert.Empty(t, flags(u1))
		assert.ElementsMatch(t, []string{store.FlagSeen, "$Label1"}, flags(u2), "system flags are canonical")
		st := f.status(inbox)
		assert.Equal(t, 2, st.Unseen)

		res, err := inbox.SetFlags(f.ctx, []store.UID{u1, u3, 424242}, store.FlagsAdd, []string{store.FlagFlagged, "Work"})
		require.NoError(t, err)
		require.Len(t, res, 2, "missing UIDs are skipped")
		assert.Equal(t, u1, res[0].UID)
		assert.ElementsMatch(t, []string{store.FlagFlagged, "Work"}, res[0].Flags)
		assert.ElementsMatch(t, []string{store.FlagDraft, store.FlagFlagged, "Work"}, flags(u3))

		_, err = inbox.SetFlags(f.ctx, []store.UID{u3}, store.FlagsRemove, []string{store.FlagDraft, "Work"})
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{store.FlagFlagged}, flags(u3))

		_, err = inbox.SetFlags(f.ctx, []store.UID{u2}, store.FlagsReplace, []string{store.FlagAnswered, store.FlagDeleted})
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{store.FlagAnswered, store.FlagDeleted}, flags(u2))
		st = f.status(inbox)
		assert.Equal(t, 3, st.Unseen)
		assert.Equal(t, 1, st.Deleted)

		_, err = inbox.SetFlags(f.ctx, []store.UID{u2}, store.FlagsReplace, nil)
		require.NoError(t, err)
		assert.Empty(t, flags(u2))

		// All five system flags and several keywords survive a round trip.
		all := []string{store.FlagAnswered, store.FlagDeleted, store.FlagDraft, store.FlagFlagged, store.FlagSeen, "$Forwarded", "$MDNSent", "Project-X"}
		_, err = inbox.SetFlags(f.ctx, []store.UID{u1}, store.FlagsReplace, all)
		require.NoError(t, err)
		assert.ElementsMatch(t, all, flags(u1))
		assert.ElementsMatch(t, all, f.list(f.folder(f.mailbox(alice), "INBOX"))[0].Flags, "seen by another handle")

		_, err = inbox.SetFlags(f.ctx, []store.UID{u1}, store.FlagsAdd, []string{"bad keyword"})
		assert.ErrorIs(t, err, store.ErrBadName)
	})

	t.Run("Expunge", func(t *testing.T) {
		f := r.setup(t)
		inbox := f.folder(f.mailbox(alice), "INBOX")
		var u []store.UID
		for i := range 6 {
			u = append(u, f.append(inbox, msg(string(rune('a'+i)))))
		}
		gone, err := inbox.Expunge(f.ctx, nil)
		require.NoError(t, err)
		assert.Empty(t, gone, "nothing flagged \\Deleted")

		_, err = inbox.SetFlags(f.ctx, []store.UID{u[0], u[2], u[4], u[5]}, store.FlagsAdd, []string{store.FlagDeleted})
		require.NoError(t, err)
		// UID EXPUNGE (RFC 4315): only the given UIDs among the \Deleted.
		gone, err = inbox.Expunge(f.ctx, []store.UID{u[1], u[2], u[5]})
		require.NoError(t, err)
		assert.Equal(t, []store.UID{u[2], u[5]}, gone)
		assert.Equal(t, []store.UID{u[0], u[1], u[3], u[4]}, f.uids(inbox))

		gone, err = inbox.Expunge(f.ctx, []store.UID{})
		require.NoError(t, err)
		assert.Empty(t, gone, "an empty non-nil set expunges nothing")

		gone, err = inbox.Expunge(f.ctx, nil)
		require.NoError(t, err)
		assert.Equal(t, []store.UID{u[0], u[4]}, gone)
		assert.Equal(t, []store.UID{u[1], u[3]}, f.uids(inbox))
		st := f.status(inbox)
		assert.Equal(t, 2, st.Messages)
		assert.Zero(t, st.Deleted)
		us, err := f.mailbox(alice).Usage(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(2), us.Messages)
		assert.Equal(t, int64(len(msg("b"))+len(msg("d"))), us.Bytes)
	})

	t.Run("Append", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		sent := f.folder(mb, "Sent")
		date := time.Date(2020, 2, 29, 13, 14, 15, 0, time.FixedZone("", 2*3600))
		uid, err := sent.Append(f.ctx, strings.NewReader(msg("sent")), []string{store.FlagSeen, "$Sent"}, date)
		require.NoError(t, err)
		l := f.list(sent)
		require.Len(t, l, 1)
		assert.Equal(t, uid, l[0].UID)
		assert.True(t, date.Equal(l[0].InternalDate), "internal date %v, want %v", l[0].InternalDate, date)
		assert.ElementsMatch(t, []string{store.FlagSeen, "$Sent"}, l[0].Flags)
		assert.Equal(t, int64(len(msg("sent"))), l[0].Size)
		assert.Equal(t, msg("sent"), f.read(sent, uid))

		// A zero date means now.
		before := time.Now().Add(-time.Minute)
		uid2 := f.append(sent, msg("now"))
		for _, m := range f.list(sent) {
			if m.UID == uid2 {
				assert.True(t, m.InternalDate.After(before), "zero date means now: %v", m.InternalDate)
			}
		}
		// Empty messages are messages too.
		u3 := f.append(sent, "")
		assert.Equal(t, "", f.read(sent, u3))
	})

	t.Run("DeliverOptions", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		date := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
		uid := f.deliver(alice, msg("junk"), store.DeliverOptions{Folder: "Junk", Flags: []string{"$Junk"}, Date: date})
		l := f.list(f.folder(mb, "Junk"))
		require.Len(t, l, 1)
		assert.Equal(t, uid, l[0].UID)
		assert.Equal(t, []string{"$Junk"}, l[0].Flags)
		assert.True(t, date.Equal(l[0].InternalDate))

		uid = f.deliver(alice, msg("fallback"), store.DeliverOptions{Folder: "Does/Not/Exist"})
		assert.Equal(t, []store.UID{uid}, f.uids(f.folder(mb, "INBOX")), "a missing folder falls back to INBOX")
		assert.NotContains(t, f.folderNames(mb), "Does/Not/Exist")
		uid = f.deliver("ALICE@example.org", msg("case"), store.DeliverOptions{Folder: "inbox"})
		assert.Contains(t, f.uids(f.folder(mb, "INBOX")), uid)
	})

	t.Run("CopyMove", func(t *testing.T) {
		f := r.setup(t)
		mb := f.mailbox(alice)
		inbox := f.folder(mb, "INBOX")
		archive := f.folder(mb, "Archive")
		date := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
		var u []store.UID
		for i := range 4 {
			uid, err := inbox.Append(f.ctx, strings.NewReader(msg(string(rune('a'+i)))), []string{"$K" + string(rune('a'+i))}, date.Add(time.Duration(i)*time.Hour))
			require.NoError(t, err)
			u = append(u, uid)
		}
		f.append(archive, msg("already there"))

		res, err := inbox.Copy(f.ctx, []store.UID{u[2], u[0], 77777}, "Archive")
		require.NoError(t, err)
		assert.Equal(t, f.status(archive).UIDValidity, res.UIDValidity)
		assert.Equal(t, []store.UID{u[0], u[2]}, res.Source, "source UIDs ascending, missing skipped")
		require.Len(t, res.Dest, 2)
		assert.Less(t, res.Dest[0], res.Dest[1])
		assert.Len(t, f.list(inbox), 4, "copy keeps the source")
		al := f.list(archive)
		require.Len(t, al, 3)
		for i, d := range res.Dest {
			var m store.MessageInfo
			for _, x := range al {
				if x.UID == d {
					m = x
				}
			}
			src := []int{0, 2}[i]
			assert.Equal(t, []string{"$K" + string(rune('a'+src))}, m.Flags, "flags kept")
			assert.True(t, date.Add(time.Duration(src)*time.Hour).Equal(m.InternalDate), "internal date kept")
			assert.Equal(t, msg(string(rune('a'+src))), f.read(archive, d))
		}

		res, err = inbox.Move(f.ctx, []store.UID{u[1], u[3]}, "Trash")
		require.NoError(t, err)
		assert.Equal(t, []store.UID{u[1], u[3]}, res.Source)
		require.Len(t, res.Dest, 2)
		trash := f.folder(mb, "Trash")
		assert.Equal(t, res.Dest, f.uids(trash))
		assert.Equal(t, f.status(trash).UIDValidity, res.UIDValidity)
		assert.Equal(t, []store.UID{u[0], u[2]}, f.uids(inbox), "move removes the source")
		assert.Equal(t, msg("d"), f.read(trash, res.Dest[1]))

		_, err = inbox.Copy(f.ctx, []store.UID{u[0]}, "Nope")
		assert.ErrorIs(t, err, store.ErrNoSuchFolder)
		_, err = inbox.Move(f.ctx, []store.UID{u[0]}, "Nope")
		assert.ErrorIs(t, err, store.ErrNoSuchFolder)
		assert.Equal(t, []store.UID{u[0], u[2]}, f.uids(inbox))

		us, err := mb.Usage(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(4+1+2), us.Messages, "copies count, moves do not")
	})

	t.Run("CRLF", func(t *testing.T) {
		f := r.setup(t)
		inbox := f.folder(f.mailbox(alice), "INBOX")
		lf := "Subject: bare LF\n\nline 1\nline 2\n"
		want := "Subject: bare LF\r\n\r\nline 1\r\nline 2\r\n"
		u1 := f.deliver(alice, lf, store.DeliverOptions{})
		u2 := f.append(inbox, lf)
		u3 := f.append(inbox, want)
		for _, uid := range []store.UID{u1, u2, u3} {
			assert.Equal(t, want, f.read(inbox, uid))
		}
		for _, m := range f.list(inbox) {
			assert.Equal(t, int64(len(want)), m.Size, "Size counts CRLF octets")
		}
		assert.Equal(t, int64(3*len(want)), f.status(inbox).Size)
	})

	t.Run("LargeBody", func(t *testing.T) {
		f := r.setup(t)
		inbox := f.folder(f.mailbox(alice), "INBOX")
		const lines = 60000 // 60000 × 78 octets ≈ 4.7 MB
		src := &generated{lines: lines}
		uid, err := f.s.Deliver(f.ctx, alice, src, store.DeliverOptions{})
		require.NoError(t, err)
		want := src.sum.Sum(nil)
		l := f.list(inbox)
		require.Len(t, l, 1)
		assert.Equal(t, int64(src.n), l[0].Size)
		rc, err := inbox.Open(f.ctx, uid)
		require.NoError(t, err)
		h := sha256.New()
		n, err := io.Copy(h, rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		assert.Equal(t, src.n, n)
		assert.Equal(t, want, h.Sum(nil), "body read back differs")
	})
}

// generated streams a large CRLF message without holding it in memory,
// hashing what it hands out.
type generated struct {
	lines, i int
	n        int64
	buf      bytes.Buffer
	sum      hashWriter
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func (g *generated) Read(p []byte) (int, error) {
	if g.sum == nil {
		g.sum = sha256.New()
		g.buf.WriteString("From: big@remote.test\r\nSubject: large\r\n\r\n")
	}
	for g.buf.Len() < len(p) && g.i < g.lines {
		line := strings.Repeat(string(rune('A'+g.i%26)), 70)
		g.buf.WriteString(line)
		g.buf.WriteString(" ")
		g.buf.WriteString(string(rune('0' + g.i%10)))
		g.buf.WriteString("    \r\n")
		g.i++
	}
	if g.buf.Len() == 0 {
		return 0, io.EOF
	}
	n, _ := g.buf.Read(p)
	g.sum.Write(p[:n])
	g.n += int64(n)
	return n, nil
}
