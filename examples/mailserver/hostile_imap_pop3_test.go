package main

// Hostile input against IMAP and POP3 of the assembled server, and mail
// read back through them (see hostile_test.go for the SMTP side and the
// helpers).

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/pop3"
)

// imapCmd sends one tagged IMAP command (synchronising literals are sent
// after the server's "+") and returns the tagged status line.
func (rc *rawConn) imapCmd(tag string, parts ...string) string {
	rc.t.Helper()
	for i, p := range parts {
		rc.send(p)
		if i < len(parts)-1 {
			for {
				l := rc.line()
				if strings.HasPrefix(l, "+") {
					break
				}
				if strings.HasPrefix(l, tag+" ") {
					return strings.TrimPrefix(l, tag+" ") // refused before the literal
				}
			}
		}
	}
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") {
			return strings.TrimPrefix(l, tag+" ")
		}
	}
}

// imapRaw logs in over IMAPS with a raw connection.
func imapRaw(t *testing.T, ts *testServer, user, pass string) *rawConn {
	t.Helper()
	rc := dialRaw(t, ts.Addr("imaps"), true)
	require.True(t, strings.HasPrefix(rc.line(), "* OK"))
	require.True(t, strings.HasPrefix(rc.imapCmd("l", "l LOGIN "+user+" "+pass+"\r\n"), "OK"))
	return rc
}

// dirTree lists every directory under root, relative to it.
func dirTree(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel, err := filepath.Rel(root, p)
			require.NoError(t, err)
			dirs = append(dirs, rel)
		}
		return nil
	}))
	return dirs
}

// TestHostileMailboxNames: mailbox names that try to leave the maildir, or
// that no file system should see, are refused with NO or BAD by CREATE,
// RENAME, SELECT, APPEND and DELETE, and no directory appears anywhere,
// inside or outside the data directory.
func TestHostileMailboxNames(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	ts := startServer(t, dataDir, "-user", alice+":"+alicePass)
	rc := imapRaw(t, ts, alice, alicePass)
	require.True(t, strings.HasPrefix(rc.imapCmd("s", "s SELECT INBOX\r\n"), "OK"))
	before := dirTree(t, root)

	literal := func(name string) []string {
		return []string{fmt.Sprintf("{%d}\r\n", len(name)), name + "\r\n"}
	}
	// undecodable marks names that go-imap (v2.0.0-beta.8) cannot decode
	// as modified UTF-7: it answers BAD but leaves the end of the command
	// line unread, so the next command fails to parse and it closes the
	// connection. The server stays up; the client must reconnect.
	type hostileName struct {
		parts       []string
		undecodable bool
	}
	names := []hostileName{
		{parts: []string{`"../../etc"`}}, {parts: []string{`"a/../../b"`}}, {parts: []string{`"INBOX/../x"`}},
		{parts: []string{`"/etc/evil"`}}, {parts: []string{`".."`}}, {parts: []string{`"."`}},
		{parts: []string{`"a/./b"`}}, {parts: []string{`"a//b"`}}, {parts: []string{`"a\\b"`}},
		{parts: []string{`"../"`}}, {parts: []string{`"~/../../x"`}},
		{parts: []string{strings.Repeat("n", 1000)}},
		{parts: literal("../../" + strings.Repeat("d", 300))},
		{parts: literal("nul\x00name"), undecodable: true},
		{parts: literal("ctl\x01name"), undecodable: true},
		{parts: literal("tab\tname"), undecodable: true},
		{parts: literal("cr\rlf\nname"), undecodable: true},
		{parts: literal("bad utf8 \xff\xfe"), undecodable: true},
	}
	for i, name := range names {
		for _, verb := range []string{"CREATE", "SELECT", "DELETE", "RENAME INBOX", "APPEND"} {
			if rc == nil {
				rc = imapRaw(t, ts, alice, alicePass)
			}
			tag := fmt.Sprintf("h%d", i)
			parts := append([]string(nil), name.parts...)
			parts[0] = tag + " " + verb + " " + parts[0]
			last := strings.TrimSuffix(parts[len(parts)-1], "\r\n")
			if verb == "APPEND" {
				parts[len(parts)-1] = last + " {7}\r\n"
				parts = append(parts, "Subject\r\n")
			} else {
				parts[len(parts)-1] = last + "\r\n"
			}
			got := rc.imapCmd(tag, parts...)
			what := fmt.Sprintf("%s %q", verb, strings.Join(name.parts, ""))
			assert.True(t, strings.HasPrefix(got, "NO") || strings.HasPrefix(got, "BAD"), "%s: got %q", what, got)
			rc.send("p NOOP\r\n")
			l, err := rc.r.ReadString('\n')
			if err != nil {
				assert.True(t, name.undecodable, "%s: connection lost: %v", what, err)
				rc = nil
				continue
			}
			assert.True(t, strings.HasPrefix(l, "p OK"), "%s: NOOP got %q", what, l)
		}
	}
	if rc == nil {
		rc = imapRaw(t, ts, alice, alicePass)
	}
	assert.True(t, strings.HasPrefix(rc.imapCmd("n", "n NOOP\r\n"), "OK"), "the session is still usable")
	rc.imapCmd("z", "z LOGOUT\r\n")
	ts.stop()
	assert.Equal(t, before, dirTree(t, root), "no directory created")
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "data", entries[0].Name())
	assert.Empty(t, storedMessages(t, dataDir), "no APPEND succeeded")
}

// brokenMIME returns messages whose MIME structure is wrong in the ways
// parsers trip over.
func brokenMIME() map[string]string {
	hdr := func(subject, ctype string) string {
		return "From: <bob@remote.test>\r\nTo: <" + alice + ">\r\nSubject: " + subject +
			"\r\nMIME-Version: 1.0\r\nContent-Type: " + ctype + "\r\n\r\n"
	}
	var nested strings.Builder
	nested.WriteString(hdr("nested 100", `multipart/mixed; boundary="b0"`))
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&nested, "--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", i-1, i)
	}
	nested.WriteString("--b99\r\nContent-Type: text/plain\r\n\r\ndeep\r\n")
	for i := 99; i >= 0; i-- {
		fmt.Fprintf(&nested, "--b%d--\r\n", i)
	}
	var rfc822 strings.Builder
	rfc822.WriteString(hdr("nested rfc822", "message/rfc822"))
	for range 50 {
		rfc822.WriteString("Subject: inner\r\nContent-Type: message/rfc822\r\n\r\n")
	}
	rfc822.WriteString("Subject: innermost\r\n\r\ntext\r\n")
	return map[string]string{
		"no parts":         hdr("no parts", `multipart/mixed; boundary="xyz"`) + "just a preamble, no boundary at all\r\n",
		"unterminated":     hdr("unterminated", `multipart/mixed; boundary="xyz"`) + "--xyz\r\nContent-Type: text/plain\r\n\r\npart one\r\n--xyz\r\nContent-Type: text/html\r\n\r\n<p>never closed\r\n",
		"no boundary":      hdr("no boundary", "multipart/alternative") + "--\r\n\r\n--\r\n",
		"empty boundary":   hdr("empty boundary", `multipart/mixed; boundary=""`) + "--\r\n\r\nx\r\n----\r\n",
		"bad params":       hdr("bad params", `text/plain; charset="unterminated; name==; ;;; format`) + "x\r\n",
		"bad encoding":     "Subject: bad encoding\r\nContent-Transfer-Encoding: base64\r\nContent-Type: text/plain\r\n\r\n!!!not base64%%%\r\n=ZZ\r\n",
		"bad qp":           "Subject: bad qp\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=G0=\r\n=0\r\n",
		"encoded words":    "Subject: =?x-unknown?Q?=FF=FE?= =?utf-8?B?!!!?= =?utf-8?Q?unterminated\r\nFrom: =?utf-8?B?====?= <\"@@\"@>\r\nTo: ,,,<>;\r\nDate: not a date\r\n\r\nx\r\n",
		"nested 100":       nested.String(),
		"nested rfc822":    rfc822.String(),
		"header only":      "Subject: header only\r\n",
		"no header at all": "\r\nbody without header\r\n",
	}
}

// TestHostileMIME: broken MIME delivered over SMTP is stored as sent
// (after the Received header), and IMAP FETCH BODYSTRUCTURE, ENVELOPE,
// BODY[1], BODY[] and POP3 RETR all answer for every message, with the
// same bytes over both protocols. A 2 MB single-line message, which SMTP
// cannot carry (line limit), is put in with IMAP APPEND and read back the
// same way.
func TestHostileMIME(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	msgs := brokenMIME()
	names := make([]string, 0, len(msgs))
	for name := range msgs {
		names = append(names, name)
	}
	sort.Strings(names)
	rc := dialMX(t, ts)
	for _, name := range names {
		rc.expect("MAIL FROM:<bob@remote.test>", "250")
		rc.expect("RCPT TO:<"+alice+">", "250")
		l := rc.data(msgs[name])
		require.True(t, strings.HasPrefix(l, "250"), "%s: %s", name, l)
	}
	rc.expect("QUIT", "221")

	long := "Subject: one long line\r\n\r\n" + strings.Repeat("L", 2<<20) + "\r\n"
	c := imapLogin(t, ts.Addr("imap"), alice, alicePass, nil)
	app := c.Append("INBOX", int64(len(long)), nil)
	_, err := app.Write([]byte(long))
	require.NoError(t, err)
	require.NoError(t, app.Close())
	_, err = app.Wait()
	require.NoError(t, err)
	n := len(names) + 1

	sel, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.EqualValues(t, n, sel.NumMessages)
	fetched, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		Envelope:      true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		RFC822Size:    true,
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true},
			{Peek: true, Part: []int{1}},
			{Peek: true, Specifier: imap.PartSpecifierHeader},
			{Peek: true, Part: []int{1, 1, 1}, Specifier: imap.PartSpecifierMIME},
		},
	}).Collect()
	require.NoError(t, err)
	require.Len(t, fetched, n)
	full := make([]string, n)
	for i, m := range fetched {
		assert.NotNil(t, m.Envelope, "message %d", i+1)
		assert.NotNil(t, m.BodyStructure, "message %d", i+1)
		whole := m.FindBodySection(&imap.FetchItemBodySection{Peek: true})
		require.NotNil(t, whole, "message %d", i+1)
		assert.EqualValues(t, m.RFC822Size, len(whole), "message %d", i+1)
		full[i] = string(whole)
	}
	for i, name := range names {
		assert.True(t, strings.HasSuffix(full[i], msgs[name]), "%s stored as sent", name)
	}
	assert.Equal(t, long, full[n-1])

	// And once more with UID FETCH of everything the other way round, on
	// a message at a time, including BINARY, which decodes.
	for i := 1; i <= n; i++ {
		_, err := c.Fetch(imap.SeqSetNum(uint32(i)), &imap.FetchOptions{
			BinarySection:     []*imap.FetchItemBinarySection{{Peek: true, Part: []int{1}}},
			BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}},
			BodyStructure:     &imap.FetchItemBodyStructure{},
		}).Collect()
		if err != nil {
			// RFC 3516 4.3: a part that cannot be decoded is refused with
			// NO [UNKNOWN-CTE]; anything else is a failure.
			assert.Contains(t, err.Error(), "UNKNOWN-CTE", "message %d", i)
		}
	}
	require.NoError(t, c.Noop().Wait(), "the IMAP session is still usable")

	ctx := context.Background()
	pc, err := pop3.DialTLS(ctx, ts.Addr("pop3s"), pop3.ClientOptions{TLSConfig: insecureTLS})
	require.NoError(t, err)
	defer pc.Close()
	require.NoError(t, pc.Login(ctx, alice, alicePass))
	count, _, err := pc.Stat(ctx)
	require.NoError(t, err)
	require.Equal(t, n, count)
	for i := 1; i <= n; i++ {
		r, err := pc.Retrieve(ctx, i)
		require.NoError(t, err)
		b, err := io.ReadAll(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		assert.Equal(t, full[i-1], string(b), "message %d: POP3 and IMAP agree", i)
	}
	require.NoError(t, pc.Quit(ctx))
}

// TestHostileDisconnectIMAPAppend: a client that vanishes in the middle of
// an APPEND literal, synchronising or not (RFC 7888), leaves nothing: no
// message and no file in tmp/.
func TestHostileDisconnectIMAPAppend(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	chunk := strings.Repeat("appended line\r\n", 4000)

	rc := imapRaw(t, ts, alice, alicePass)
	rc.send("a APPEND INBOX {100000}\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+"))
	rc.send("Subject: cut\r\n\r\n" + chunk)
	require.NoError(t, rc.c.Close())

	rc = imapRaw(t, ts, alice, alicePass)
	rc.send("b APPEND INBOX {100000+}\r\nSubject: cut too\r\n\r\n" + chunk)
	require.NoError(t, rc.c.Close())

	// A complete APPEND on a third connection is kept.
	rc = imapRaw(t, ts, alice, alicePass)
	kept := "Subject: kept\r\n\r\nwhole\r\n"
	got := rc.imapCmd("c", fmt.Sprintf("c APPEND INBOX {%d}\r\n", len(kept)), kept+"\r\n")
	require.True(t, strings.HasPrefix(got, "OK"), got)
	require.NoError(t, rc.c.Close())

	ts.stop()
	files := storedMessages(t, ts.dataDir)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Contains(t, string(b), "Subject: kept")
	assertClean(t, ts.dataDir)
}

// pop3Raw logs in over POP3S with a raw connection.
func pop3Raw(t *testing.T, ts *testServer, user, pass string) *rawConn {
	t.Helper()
	rc := dialRaw(t, ts.Addr("pop3s"), true)
	require.True(t, strings.HasPrefix(rc.line(), "+OK"))
	rc.send("USER " + user + "\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+OK"))
	rc.send("PASS " + pass + "\r\n")
	l := rc.line()
	require.True(t, strings.HasPrefix(l, "+OK"), l)
	return rc
}

// TestHostileDisconnectPOP3Retr: DELE only takes effect at QUIT (RFC 1939
// 6): a client that marks a message deleted and then vanishes in the
// middle of a RETR loses nothing.
func TestHostileDisconnectPOP3Retr(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	big := message("bob@remote.test", alice, "big", strings.Repeat("a line of the big message\r\n", 40000))
	for _, m := range []string{big, message("bob@remote.test", alice, "second", "x"), message("bob@remote.test", alice, "third", "x")} {
		require.NoError(t, sendMX(t, ts.Addr("smtp"), "bob@remote.test", []string{alice}, m))
	}
	waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 3)

	// The control: DELE then QUIT deletes.
	rc := pop3Raw(t, ts, alice, alicePass)
	rc.send("DELE 3\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+OK"))
	rc.send("QUIT\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+OK"))
	require.NoError(t, rc.c.Close())

	rc = pop3Raw(t, ts, alice, alicePass)
	rc.send("DELE 2\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+OK"))
	rc.send("RETR 1\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+OK"))
	for range 10 {
		rc.line()
	}
	require.NoError(t, rc.c.Close())

	ts.stop()
	files := storedMessages(t, ts.dataDir)
	require.Len(t, files, 2, "the message marked deleted before the disconnect is kept")
	var all string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		all += string(b)
	}
	assert.Contains(t, all, "Subject: big")
	assert.Contains(t, all, "Subject: second")
	assert.NotContains(t, all, "Subject: third")
}

// TestHostileConcurrentDelivery: 8 SMTP clients deliver 5 messages each to
// one mailbox while an IMAP client APPENDs 10 and a POP3 client keeps
// listing it: every acknowledged message is there exactly once, with a
// distinct UID, and the POP3 listings never shrink.
func TestHostileConcurrentDelivery(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass, "-max-messages-per-minute", "0")
	const senders, perSender, appends = 8, 5, 10
	errs := make(chan error, senders+2)
	for i := range senders {
		go func() {
			c, err := smtp.Dial(ts.Addr("smtp"))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := range perSender {
				subject := fmt.Sprintf("smtp %d-%d", i, j)
				if err := c.SendMail("bob@remote.test", []string{alice}, strings.NewReader(message("bob@remote.test", alice, subject, "x"))); err != nil {
					errs <- fmt.Errorf("%s: %w", subject, err)
					return
				}
			}
			errs <- c.Quit()
		}()
	}
	c := imapLogin(t, ts.Addr("imap"), alice, alicePass, nil)
	go func() {
		for i := range appends {
			msg := message("bob@remote.test", alice, fmt.Sprintf("imap %d", i), "y")
			app := c.Append("INBOX", int64(len(msg)), nil)
			if _, err := app.Write([]byte(msg)); err != nil {
				errs <- err
				return
			}
			if err := app.Close(); err != nil {
				errs <- err
				return
			}
			if _, err := app.Wait(); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	stop := make(chan struct{})
	go func() {
		ctx := context.Background()
		last := 0
		for {
			select {
			case <-stop:
				errs <- nil
				return
			default:
			}
			pc, err := pop3.DialTLS(ctx, ts.Addr("pop3s"), pop3.ClientOptions{TLSConfig: insecureTLS})
			if err != nil {
				errs <- err
				return
			}
			if err := pc.Login(ctx, alice, alicePass); err != nil {
				pc.Close()
				errs <- err
				return
			}
			n, _, err := pc.Stat(ctx)
			if err == nil && n < last {
				err = fmt.Errorf("POP3 saw %d messages after %d", n, last)
			}
			last = n
			if err == nil {
				err = pc.Quit(ctx)
			}
			pc.Close()
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	for range senders + 1 {
		require.NoError(t, <-errs)
	}
	close(stop)
	require.NoError(t, <-errs)

	total := senders*perSender + appends
	got := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", total)
	require.Len(t, got, total)
	seen := map[string]bool{}
	for _, m := range got {
		_, rest, ok := strings.Cut(m, "\r\nSubject: ")
		require.True(t, ok, m)
		subject, _, _ := strings.Cut(rest, "\r\n")
		assert.False(t, seen[subject], "%s stored twice", subject)
		seen[subject] = true
	}
	for i := range senders {
		for j := range perSender {
			assert.True(t, seen[fmt.Sprintf("smtp %d-%d", i, j)])
		}
	}
	for i := range appends {
		assert.True(t, seen[fmt.Sprintf("imap %d", i)])
	}
	sel, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.EqualValues(t, total, sel.NumMessages)
	uids, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
	require.NoError(t, err)
	distinct := map[imap.UID]bool{}
	for _, m := range uids {
		distinct[m.UID] = true
	}
	assert.Len(t, distinct, total, "distinct UIDs")
}

// TestHostileIMAPQuota: APPEND and COPY that would go over the quota are
// refused NO [OVERQUOTA] and leave the destination as it was (RFC 3501
// 6.4.7: a failed COPY restores the destination); MOVE, which adds
// nothing to the mailbox, works.
func TestHostileIMAPQuota(t *testing.T) {
	ts := startServer(t, "", "-user", "q@example.test:q-secret:3000")
	for i := range 3 {
		require.NoError(t, sendMX(t, ts.Addr("smtp"), "bob@remote.test", []string{"q@example.test"},
			message("bob@remote.test", "q@example.test", fmt.Sprint("fill ", i), strings.Repeat("0123456789\r\n", 50))))
	}
	rc := imapRaw(t, ts, "q@example.test", "q-secret")
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 100)
	got := rc.imapCmd("a", fmt.Sprintf("a APPEND INBOX {%d}\r\n", len(big)), big+"\r\n")
	assert.True(t, strings.HasPrefix(got, "NO [OVERQUOTA]"), got)
	got = rc.imapCmd("b", "b CREATE Keep\r\n")
	require.True(t, strings.HasPrefix(got, "OK"), got)
	got = rc.imapCmd("s", "s SELECT INBOX\r\n")
	require.True(t, strings.HasPrefix(got, "OK"), got)
	got = rc.imapCmd("c", "c COPY 1:3 Keep\r\n")
	assert.True(t, strings.HasPrefix(got, "NO [OVERQUOTA]"), got)
	assert.Equal(t, `* STATUS "Keep" (MESSAGES 0)`, rc.status("d", "Keep"), "nothing copied")
	got = rc.imapCmd("m", "m MOVE 1:3 Keep\r\n")
	assert.True(t, strings.HasPrefix(got, "OK"), got)
	assert.Equal(t, `* STATUS "Keep" (MESSAGES 3)`, rc.status("e", "Keep"))
	ts.stop()
	assert.Len(t, storedMessages(t, ts.dataDir), 3)
	assertClean(t, ts.dataDir)
}

// status sends STATUS (MESSAGES) and returns its STATUS line; other
// untagged lines (pending updates of the selected mailbox) are skipped.
func (rc *rawConn) status(tag, mailbox string) string {
	rc.t.Helper()
	rc.send(tag + " STATUS " + mailbox + " (MESSAGES)\r\n")
	var st string
	for {
		l := rc.line()
		switch {
		case strings.HasPrefix(l, "* STATUS "):
			st = l
		case strings.HasPrefix(l, tag+" "):
			require.True(rc.t, strings.HasPrefix(l, tag+" OK"), l)
			return st
		}
	}
}
