package imapbackend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/memstore"
)

func imapCode(err error) imap.ResponseCode {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func TestLogin(t *testing.T) {
	ts := newTestServer(t, Options{})

	t.Run("plaintext refused", func(t *testing.T) {
		c, err := imapclient.DialInsecure(ts.addr, nil)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.WaitGreeting())
		assert.True(t, c.Caps().Has(imap.CapLoginDisabled))
		assert.True(t, c.Caps().Has(imap.CapStartTLS))
		err = c.Login(testUser, testPass).Wait()
		require.Error(t, err)
		assert.Equal(t, imap.ResponseCodePrivacyRequired, imapCode(err))
	})
	t.Run("starttls", func(t *testing.T) {
		c := ts.dial(t, nil)
		// (imapclient updates State after Wait returns: use a command.)
		_, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		require.NoError(t, err)
		require.NoError(t, c.Logout().Wait())
	})
	t.Run("implicit TLS", func(t *testing.T) {
		c, err := imapclient.DialTLS(ts.tlsAddr, &imapclient.Options{TLSConfig: ts.tlsConf})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Login(testUser, testPass).Wait())
	})
	t.Run("wrong password", func(t *testing.T) {
		c, err := imapclient.DialStartTLS(ts.addr, &imapclient.Options{TLSConfig: ts.tlsConf})
		require.NoError(t, err)
		defer c.Close()
		err = c.Login(testUser, "wrong").Wait()
		require.Error(t, err)
		assert.Equal(t, imap.ResponseCodeAuthenticationFailed, imapCode(err))
		err = c.Login("nobody@example.org", testPass).Wait()
		assert.Equal(t, imap.ResponseCodeAuthenticationFailed, imapCode(err))
		// Still usable after failures.
		require.NoError(t, c.Login(testUser, testPass).Wait())
	})
	t.Run("default domain", func(t *testing.T) {
		c, err := imapclient.DialStartTLS(ts.addr, &imapclient.Options{TLSConfig: ts.tlsConf})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Login("alice", testPass).Wait())
	})
	t.Run("authenticate plain", func(t *testing.T) {
		c, err := imapclient.DialTLS(ts.tlsAddr, &imapclient.Options{TLSConfig: ts.tlsConf})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.WaitGreeting())
		assert.True(t, c.Caps().Has("AUTH=PLAIN"))
		err = c.Authenticate(sasl.NewPlainClient("", testUser, "bad"))
		require.Error(t, err)
		err = c.Authenticate(sasl.NewPlainClient("bob@example.org", testUser, testPass))
		require.Error(t, err)
		require.NoError(t, c.Authenticate(sasl.NewPlainClient("", testUser, testPass)))
		_, err = c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		require.NoError(t, err)
	})
	t.Run("insecure auth allowed", func(t *testing.T) {
		ts2 := newTestServer(t, Options{InsecureAuth: true})
		c, err := imapclient.DialInsecure(ts2.addr, nil)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Login(testUser, testPass).Wait())
	})
}

func TestCapabilities(t *testing.T) {
	ts := newTestServer(t, Options{AppendLimit: 1 << 20})
	c := ts.dial(t, nil)
	caps, err := c.Capability().Wait()
	require.NoError(t, err)
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapIdle, imap.CapMove,
		imap.CapUIDPlus, imap.CapNamespace, imap.CapUnselect, imap.CapESearch, imap.CapListStatus,
		imap.CapSpecialUse, imap.CapChildren, imap.CapUTF8Accept, imap.CapBinary, "APPENDLIMIT=1048576"} {
		assert.True(t, caps.Has(want), "missing %s", want)
	}
	ns, err := c.Namespace().Wait()
	require.NoError(t, err)
	require.Len(t, ns.Personal, 1)
	assert.Equal(t, imap.NamespaceDescriptor{Prefix: "", Delim: '/'}, ns.Personal[0])
}

func listNames(t *testing.T, c *imapclient.Client, ref, pattern string, opts *imap.ListOptions) map[string][]imap.MailboxAttr {
	t.Helper()
	l, err := c.List(ref, pattern, opts).Collect()
	require.NoError(t, err)
	out := map[string][]imap.MailboxAttr{}
	for _, d := range l {
		out[d.Mailbox] = d.Attrs
	}
	return out
}

func TestMailboxes(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.dial(t, nil)

	all := listNames(t, c, "", "*", nil)
	require.Contains(t, all, "INBOX")
	assert.Contains(t, all["Sent"], imap.MailboxAttrSent)
	assert.Contains(t, all["Trash"], imap.MailboxAttrTrash)
	assert.Contains(t, all["INBOX"], imap.MailboxAttrHasNoChildren)

	require.NoError(t, c.Create("Work/Projects", nil).Wait())
	require.NoError(t, c.Create("Café/日本", nil).Wait())
	require.NoError(t, c.Create("Lists", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrFlagged}}).Wait())

	all = listNames(t, c, "", "*", nil)
	assert.Contains(t, all["Work"], imap.MailboxAttrHasChildren)
	assert.Contains(t, all["Work/Projects"], imap.MailboxAttrHasNoChildren)
	assert.Contains(t, all, "Café/日本")
	assert.Contains(t, all["Lists"], imap.MailboxAttrFlagged)

	top := listNames(t, c, "", "%", nil)
	assert.Contains(t, top, "Work")
	assert.NotContains(t, top, "Work/Projects")
	sub := listNames(t, c, "Work/", "%", nil)
	assert.Equal(t, []string{"Work/Projects"}, keys(sub))
	assert.Contains(t, listNames(t, c, "", "inbox", nil), "INBOX")

	// The delimiter query.
	l, err := c.List("", "", nil).Collect()
	require.NoError(t, err)
	require.Len(t, l, 1)
	assert.Equal(t, '/', l[0].Delim)

	// LIST-STATUS and SPECIAL-USE selection.
	ts.deliver(t, "INBOX", msgPlain)
	l, err = c.List("", "INBOX", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true}}).Collect()
	require.NoError(t, err)
	require.Len(t, l, 1)
	require.NotNil(t, l[0].Status)
	assert.EqualValues(t, 1, *l[0].Status.NumMessages)
	assert.EqualValues(t, 1, *l[0].Status.NumUnseen)
	su := listNames(t, c, "", "*", &imap.ListOptions{SelectSpecialUse: true})
	assert.Contains(t, su, "Sent")
	assert.NotContains(t, su, "INBOX")

	// STATUS.
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDValidity: true, UIDNext: true, NumUnseen: true, Size: true, NumDeleted: true}).Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 1, *st.NumMessages)
	assert.EqualValues(t, len(msgPlain), *st.Size)
	assert.EqualValues(t, 2, st.UIDNext)
	assert.NotZero(t, st.UIDValidity)

	// Subscriptions.
	require.NoError(t, c.Unsubscribe("Sent").Wait())
	subs := listNames(t, c, "", "*", &imap.ListOptions{SelectSubscribed: true})
	assert.NotContains(t, subs, "Sent")
	assert.Contains(t, subs["INBOX"], imap.MailboxAttrSubscribed)
	require.NoError(t, c.Subscribe("Sent").Wait())
	assert.Contains(t, listNames(t, c, "", "*", &imap.ListOptions{SelectSubscribed: true}), "Sent")

	// RENAME moves children; DELETE.
	require.NoError(t, c.Rename("Work", "Jobs", nil).Wait())
	all = listNames(t, c, "", "*", nil)
	assert.Contains(t, all, "Jobs/Projects")
	assert.NotContains(t, all, "Work")
	require.NoError(t, c.Delete("Jobs/Projects").Wait())
	assert.NotContains(t, listNames(t, c, "", "*", nil), "Jobs/Projects")

	// Errors.
	err = c.Create("Jobs", nil).Wait()
	assert.Equal(t, imap.ResponseCodeAlreadyExists, imapCode(err))
	err = c.Delete("Nope").Wait()
	assert.Equal(t, imap.ResponseCodeNonExistent, imapCode(err))
	err = c.Delete("INBOX").Wait()
	assert.Error(t, err)
	_, err = c.Select("Nope", nil).Wait()
	assert.Equal(t, imap.ResponseCodeNonExistent, imapCode(err))
	_, err = c.Status("Nope", &imap.StatusOptions{NumMessages: true}).Wait()
	assert.Equal(t, imap.ResponseCodeNonExistent, imapCode(err))
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestHostileNames(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.dial(t, nil)
	for _, name := range []string{"..", "../etc", "a/../../b", "/abs", "a//b", "a/./b", "x\x01y", "tab\there", "del\x7f"} {
		t.Run(name, func(t *testing.T) {
			err := c.Create(name, nil).Wait()
			require.Error(t, err)
			if !strings.ContainsAny(name, "\x01\t\x7f") {
				// go-imap's decoder itself refuses control characters
				// (as invalid modified UTF-7) before the session sees them.
				assert.Equal(t, imap.ResponseCodeCannot, imapCode(err), "%v", err)
			}
			_, err = c.Select(name, nil).Wait()
			require.Error(t, err)
			err = c.Rename("Archive", name, nil).Wait()
			require.Error(t, err)
		})
	}
	// Nothing was created.
	for name := range listNames(t, c, "", "*", nil) {
		assert.NotContains(t, name, "..")
	}
}

func TestAppendFetch(t *testing.T) { forEachStore(t, testAppendFetch) }

func testAppendFetch(t *testing.T, ts *testServer) {
	c := ts.dial(t, nil)

	date := time.Date(2026, 11, 3, 8, 15, 0, 0, time.FixedZone("", 3600))
	ac := c.Append("INBOX", int64(len(msgMultipart)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged, "$Work"}, Time: date})
	_, err := ac.Write([]byte(msgMultipart))
	require.NoError(t, err)
	require.NoError(t, ac.Close())
	ad, err := ac.Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 1, ad.UID)
	assert.NotZero(t, ad.UIDValidity)
	ts.deliver(t, "INBOX", msgPlain)

	sd, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 2, sd.NumMessages)
	assert.Equal(t, ad.UIDValidity, sd.UIDValidity)
	assert.EqualValues(t, 3, sd.UIDNext)
	assert.Contains(t, sd.Flags, imap.Flag("$Work"))
	assert.Contains(t, sd.PermanentFlags, imap.FlagWildcard)

	msgs, err := c.Fetch(imap.UIDSetNum(1, 2), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
	}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	m := msgs[0]
	assert.EqualValues(t, 1, m.UID)
	assert.ElementsMatch(t, []imap.Flag{imap.FlagFlagged, "$Work"}, m.Flags)
	assert.True(t, date.Equal(m.InternalDate), "%v", m.InternalDate)
	assert.EqualValues(t, len(msgMultipart), m.RFC822Size)
	require.NotNil(t, m.Envelope)
	assert.Equal(t, "Résumé attached", m.Envelope.Subject)
	assert.Equal(t, "multi-1@example.com", m.Envelope.MessageID)
	assert.Equal(t, []string{"plain-1@example.net"}, m.Envelope.InReplyTo)
	require.Len(t, m.Envelope.From, 1)
	assert.Equal(t, imap.Address{Name: "Carol", Mailbox: "carol", Host: "example.com"}, m.Envelope.From[0])
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	require.True(t, ok, "%T", m.BodyStructure)
	assert.Equal(t, "mixed", mp.Subtype)
	require.Len(t, mp.Children, 3)
	att := mp.Children[1].(*imap.BodyStructureSinglePart)
	assert.Equal(t, "base64", strings.ToLower(att.Encoding))
	require.NotNil(t, att.Extended.Disposition)
	assert.Equal(t, "attachment", att.Extended.Disposition.Value)
	inner := mp.Children[2].(*imap.BodyStructureSinglePart)
	require.NotNil(t, inner.MessageRFC822)
	assert.Equal(t, "inner message", inner.MessageRFC822.Envelope.Subject)
	plain := msgs[1]
	assert.Equal(t, "Hello there", plain.Envelope.Subject)
	assert.Len(t, plain.Envelope.Cc, 1)
	sp := plain.BodyStructure.(*imap.BodyStructureSinglePart)
	assert.Equal(t, "plain", sp.Subtype)
	assert.Equal(t, "utf-8", sp.Params["charset"])

	// Non-extended BODY.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}}).Collect()
	require.NoError(t, err)
	require.IsType(t, &imap.BodyStructureMultiPart{}, msgs[0].BodyStructure)

	hdrEnd := strings.Index(msgMultipart, "\r\n\r\n") + 4
	sections := []struct {
		sec  *imap.FetchItemBodySection
		want string
	}{
		{&imap.FetchItemBodySection{Peek: true}, msgMultipart},
		{&imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierHeader}, msgMultipart[:hdrEnd]},
		{&imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierText}, msgMultipart[hdrEnd:]},
		{&imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"subject", "Message-ID"}},
			"Subject: =?utf-8?q?R=C3=A9sum=C3=A9?= attached\r\nMessage-ID: <multi-1@example.com>\r\n\r\n"},
		{&imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 5}}, "Carol"},
		{&imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 100000, Size: 5}}, ""},
		{&imap.FetchItemBodySection{Peek: true, Part: []int{1}}, "Caf=C3=A9 au lait, s'il vous pla=C3=AEt."},
		{&imap.FetchItemBodySection{Peek: true, Part: []int{2}}, "AAECAwQFBgcICQ=="},
		{&imap.FetchItemBodySection{Peek: true, Part: []int{2}, Specifier: imap.PartSpecifierMIME},
			"Content-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"},
		{&imap.FetchItemBodySection{Peek: true, Part: []int{3}, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}}, "Subject: inner message\r\n\r\n"},
		{&imap.FetchItemBodySection{Peek: true, Part: []int{3}, Specifier: imap.PartSpecifierText}, "inner body with zebra"},
		{&imap.FetchItemBodySection{Peek: true, Part: []int{3, 1}}, "inner body with zebra"},
	}
	for _, tc := range sections {
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{tc.sec}}).Collect()
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		require.Len(t, msgs[0].BodySection, 1)
		assert.Equal(t, tc.want, string(msgs[0].BodySection[0].Bytes), "%+v", tc.sec)
	}

	// BINARY decodes the transfer encoding (RFC 3516).
	bin := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		BinarySection:     []*imap.FetchItemBinarySection{bin},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}},
	}).Collect()
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, msgs[0].FindBinarySection(bin))
	n, ok := msgs[0].FindBinarySectionSize([]int{1})
	require.True(t, ok)
	assert.EqualValues(t, len("Café au lait, s'il vous plaît."), n)

	// Nothing so far set \Seen; BODY[] does, and returns the flags.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	require.NoError(t, err)
	assert.NotContains(t, msgs[0].Flags, imap.FlagSeen)
	msgs, err = c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	require.NoError(t, err)
	assert.Contains(t, msgs[0].Flags, imap.FlagSeen)
	assert.Equal(t, msgPlain, string(msgs[0].BodySection[0].Bytes))

	// EXAMINE is read-only: BODY[] does not set \Seen, STORE fails.
	_, err = c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(t, err)
	_, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	require.NoError(t, err)
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	require.NoError(t, err)
	assert.NotContains(t, msgs[0].Flags, imap.FlagSeen)
	err = c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	assert.Error(t, err)
	require.NoError(t, c.Unselect().Wait())
}

func TestAppendErrors(t *testing.T) {
	st, err := memstore.NewWithUsers(memstore.Options{}, nil)
	require.NoError(t, err)
	require.NoError(t, st.AddUser(context.Background(), testUser, testPass, store.Quota{Bytes: 100}))
	ts := newTestServerStore(t, st, Options{})
	c := ts.dial(t, nil)

	appendMsg := func(mbox, msg string) error {
		ac := c.Append(mbox, int64(len(msg)), nil)
		_, err := ac.Write([]byte(msg))
		require.NoError(t, err)
		require.NoError(t, ac.Close())
		_, err = ac.Wait()
		return err
	}
	err = appendMsg("INBOX", msgPlain)
	assert.Equal(t, imap.ResponseCodeOverQuota, imapCode(err), "%v", err)
	err = appendMsg("Nope", "Subject: x\r\n\r\nx\r\n")
	assert.Equal(t, imap.ResponseCodeTryCreate, imapCode(err), "%v", err)
	require.NoError(t, appendMsg("INBOX", "Subject: x\r\n\r\nx\r\n"))

	// Above APPENDLIMIT (RFC 7889): NO [TOOBIG] before the literal is sent.
	ts2 := newTestServer(t, Options{AppendLimit: 64})
	c2 := ts2.dial(t, nil)
	ac := c2.Append("INBOX", int64(len(msgPlain)), nil)
	_, _ = ac.Write([]byte(msgPlain))
	_ = ac.Close()
	_, err = ac.Wait()
	assert.Equal(t, imap.ResponseCodeTooBig, imapCode(err), "%v", err)
}

func TestStoreCopyMoveExpunge(t *testing.T) { forEachStore(t, testStoreCopyMoveExpunge) }

func testStoreCopyMoveExpunge(t *testing.T, ts *testServer) {
	for i := 0; i < 5; i++ {
		ts.deliver(t, "INBOX", msgPlain)
	}
	c := ts.dial(t, nil)
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)

	// STORE forms.
	msgs, err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "$Label1"}}, nil).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	assert.ElementsMatch(t, []imap.Flag{imap.FlagFlagged, "$Label1"}, msgs[0].Flags)
	msgs, err = c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{"$label1"}}, nil).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.EqualValues(t, 2, msgs[0].UID)
	assert.Equal(t, []imap.Flag{imap.FlagFlagged}, msgs[0].Flags)
	msgs, err = c.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: []imap.Flag{imap.FlagAnswered}}, nil).Collect()
	require.NoError(t, err)
	assert.Empty(t, msgs)
	msgs, err = c.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{Flags: true}).Collect()
	require.NoError(t, err)
	assert.Equal(t, []imap.Flag{imap.FlagAnswered}, msgs[0].Flags)

	// COPY with COPYUID.
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	require.NoError(t, err)
	assert.Equal(t, "1:2", cd.SourceUIDs.String())
	assert.Equal(t, "1:2", cd.DestUIDs.String())
	_, err = c.Copy(imap.SeqSetNum(1), "Nope").Wait()
	assert.Equal(t, imap.ResponseCodeTryCreate, imapCode(err))

	// MOVE with COPYUID and EXPUNGE.
	md, err := c.Move(imap.UIDSetNum(5), "Trash").Wait()
	require.NoError(t, err)
	assert.Equal(t, "5", md.SourceUIDs.String())
	assert.Equal(t, "1", md.DestUIDs.String())
	assert.EqualValues(t, 4, c.Mailbox().NumMessages)

	// EXPUNGE and UID EXPUNGE.
	require.NoError(t, c.Store(imap.SeqSetNum(1, 2, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	seqs, err := c.UIDExpunge(imap.UIDSetNum(2)).Collect()
	require.NoError(t, err)
	assert.Equal(t, []uint32{2}, seqs)
	seqs, err = c.Expunge().Collect()
	require.NoError(t, err)
	assert.Equal(t, []uint32{2, 1}, seqs)
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.EqualValues(t, 4, msgs[0].UID)

	// The destinations got the messages.
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 2, *st.NumMessages)
	st, err = c.Status("Trash", &imap.StatusOptions{NumMessages: true}).Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 1, *st.NumMessages)

	// CLOSE expunges silently.
	require.NoError(t, c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	require.NoError(t, c.UnselectAndExpunge().Wait())
	st, err = c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 0, *st.NumMessages)
}

func TestSearch(t *testing.T) { forEachStore(t, testSearch) }

func testSearch(t *testing.T, ts *testServer) {
	ts.deliver(t, "INBOX", msgPlain, `\Seen`)                // 1
	ts.deliver(t, "INBOX", msgMultipart, `\Flagged`)         // 2
	ts.deliver(t, "INBOX", crlf("Subject: tiny\n\nsmall\n")) // 3
	c := ts.dial(t, nil)
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)

	day := func(s string) time.Time {
		d, err := time.Parse("2006-01-02", s)
		require.NoError(t, err)
		return d
	}
	today := time.Now()
	cases := []struct {
		name string
		c    imap.SearchCriteria
		want []imap.UID
	}{
		{"all", imap.SearchCriteria{}, []imap.UID{1, 2, 3}},
		{"seen", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []imap.UID{1}},
		{"unseen", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []imap.UID{2, 3}},
		{"flagged", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, []imap.UID{2}},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "CAROL"}}}, []imap.UID{2}},
		{"subject decoded", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "résumé"}}}, []imap.UID{2}},
		{"header exists", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "In-Reply-To", Value: ""}}}, []imap.UID{2}},
		{"to", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: "alice@"}}}, []imap.UID{1, 2}},
		{"body", imap.SearchCriteria{Body: []string{"lazy DOG"}}, []imap.UID{1}},
		{"body qp decoded", imap.SearchCriteria{Body: []string{"café"}}, []imap.UID{2}},
		{"body nested", imap.SearchCriteria{Body: []string{"zebra"}}, []imap.UID{2}},
		{"body not header", imap.SearchCriteria{Body: []string{"Hello there"}}, nil},
		{"text header", imap.SearchCriteria{Text: []string{"hello there"}}, []imap.UID{1}},
		{"text body", imap.SearchCriteria{Text: []string{"small"}}, []imap.UID{3}},
		{"larger", imap.SearchCriteria{Larger: 500}, []imap.UID{2}},
		{"smaller", imap.SearchCriteria{Smaller: 100}, []imap.UID{3}},
		{"sentsince", imap.SearchCriteria{SentSince: day("2026-11-05")}, []imap.UID{2}},
		{"sentbefore", imap.SearchCriteria{SentBefore: day("2026-11-05")}, []imap.UID{1}},
		{"senton", imap.SearchCriteria{SentSince: day("2026-11-02"), SentBefore: day("2026-11-03")}, []imap.UID{1}},
		{"since today", imap.SearchCriteria{Since: today.AddDate(0, 0, -1)}, []imap.UID{1, 2, 3}},
		{"before", imap.SearchCriteria{Before: day("2000-01-01")}, nil},
		{"uid", imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(2, 3)}}, []imap.UID{2, 3}},
		{"seq", imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(1)}}, []imap.UID{1}},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}, []imap.UID{2, 3}},
		{"or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagSeen}}, {Body: []string{"small"}}}}}, []imap.UID{1, 3}},
		{"keyword", imap.SearchCriteria{Flag: []imap.Flag{"$Nope"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := c.UIDSearch(&tc.c, nil).Wait()
			require.NoError(t, err)
			assert.Equal(t, tc.want, data.AllUIDs())
		})
	}

	// ESEARCH return options (RFC 4731).
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 2, data.Min)
	assert.EqualValues(t, 3, data.Max)
	assert.EqualValues(t, 2, data.Count)
	data, err = c.Search(&imap.SearchCriteria{Body: []string{"zebra"}}, nil).Wait()
	require.NoError(t, err)
	assert.Equal(t, []uint32{2}, data.AllSeqNums())
}

// TestLargeMessage: BODY[] of a message above the streaming threshold
// streams from the store, whole and partial.
func TestLargeMessage(t *testing.T) {
	ts := newTestServer(t, Options{})
	var sb strings.Builder
	sb.WriteString("Subject: big\r\n\r\n")
	for sb.Len() < streamThreshold+100000 {
		sb.WriteString("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n")
	}
	big := sb.String()
	ts.deliver(t, "INBOX", big)
	c := ts.dial(t, nil)
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	whole := &imap.FetchItemBodySection{Peek: true}
	part := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: streamThreshold, Size: 20}}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{whole, part}}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.EqualValues(t, len(big), msgs[0].RFC822Size)
	assert.True(t, big == string(msgs[0].FindBodySection(whole)), "whole body differs")
	assert.Equal(t, big[streamThreshold:streamThreshold+20], string(msgs[0].FindBodySection(part)))
}

// TestIMAP4rev2: after ENABLE IMAP4rev2, names are UTF-8 on the wire,
// and SEARCH answers with ESEARCH.
func TestIMAP4rev2(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.deliver(t, "INBOX", msgPlain)
	ts.deliver(t, "INBOX", msgMultipart)
	c := ts.dial(t, nil)
	_, err := c.Enable(imap.CapIMAP4rev2).Wait()
	require.NoError(t, err)
	require.NoError(t, c.Create("Réunions/2026", nil).Wait())
	assert.Contains(t, listNames(t, c, "", "R*", nil), "Réunions/2026")
	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	data, err := c.Search(&imap.SearchCriteria{Body: []string{"zebra"}}, nil).Wait()
	require.NoError(t, err)
	assert.Equal(t, []uint32{2}, data.AllSeqNums())
	// imapclient does not send RETURN (SAVE); "$" is then empty.
	msgs, err := c.Fetch(imap.SearchRes(), &imap.FetchOptions{UID: true}).Collect()
	require.NoError(t, err)
	assert.Empty(t, msgs)
}

// TestBrokenMessages: malformed messages never break the connection.
func TestBrokenMessages(t *testing.T) {
	ts := newTestServer(t, Options{})
	for _, m := range []string{
		"Content-Type: multipart/mixed; boundary=x\r\n\r\nno parts at all\r\n",
		"Content-Type: multipart/mixed\r\n\r\n--\r\n",
		"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=y\r\n\r\n",
		"no header at all",
		"Subject: =?bogus?q?x?=\r\nContent-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: x-weird\r\n\r\nbody\r\n",
	} {
		ts.deliver(t, "INBOX", m)
	}
	c := ts.dial(t, nil)
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{{Part: []int{1}, Peek: true}, {Part: []int{1, 1}, Peek: true}},
	}).Collect()
	require.NoError(t, err)
	assert.Len(t, msgs, 5)
	binary := &imap.FetchOptions{
		BinarySection:     []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}},
	}
	msgs, err = c.Fetch(imap.SeqSet{{Start: 1, Stop: 4}}, binary).Collect()
	require.NoError(t, err)
	assert.Len(t, msgs, 4)
	// RFC 3516 4.3: BINARY of an unknown transfer encoding fails.
	_, err = c.Fetch(imap.SeqSetNum(5), binary).Collect()
	require.ErrorContains(t, err, "UNKNOWN-CTE")
	msgs, err = c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}}).Collect()
	require.NoError(t, err)
	assert.Len(t, msgs, 5)
	data, err := c.Search(&imap.SearchCriteria{Text: []string{"body"}}, nil).Wait()
	require.NoError(t, err)
	assert.Contains(t, data.AllSeqNums(), uint32(5))
	require.NoError(t, c.Noop().Wait())
}
