package imapbackend

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

const clientTimeout = 60 * time.Second

// TestPythonImaplib drives a session with Python's imaplib (STARTTLS).
func TestPythonImaplib(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	if _, err := exec.LookPath("/usr/bin/python3"); err == nil {
		py = "/usr/bin/python3"
	}
	ts := newTestServer(t, Options{})
	ts.deliver(t, "INBOX", msgPlain)
	ts.deliver(t, "INBOX", msgMultipart)

	host, port := testutil.HostPort(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "imaplib_session.py"), host, port, ts.certPEM, testUser, testPass)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var rep struct {
		List           []string `json:"list"`
		LSub           []string `json:"lsub"`
		Exists         int      `json:"exists"`
		SearchUnseen   string   `json:"search_unseen"`
		SearchFrom     string   `json:"search_from"`
		SearchText     string   `json:"search_text"`
		UIDSearch      string   `json:"uid_search"`
		FetchHeader    string   `json:"fetch_header"`
		FetchLen       int      `json:"fetch_rfc822_len"`
		FlagsAfterRead string   `json:"flags_after_read"`
		Store          string   `json:"store"`
		Expunge        []string `json:"expunge"`
		Append         string   `json:"append"`
		Status         string   `json:"status"`
	}
	require.NoError(t, json.Unmarshal(out, &rep), "%s", out)
	assert.Contains(t, strings.Join(rep.List, "\n"), `(\HasNoChildren \Sent) "/" "Sent"`)
	assert.Contains(t, strings.Join(rep.LSub, "\n"), `"/" "Trash"`)
	assert.Equal(t, 2, rep.Exists)
	assert.Equal(t, "1 2", rep.SearchUnseen)
	assert.Equal(t, "1", rep.SearchFrom)
	assert.Equal(t, "1", rep.SearchText)
	assert.Equal(t, "1 2", rep.UIDSearch)
	assert.Equal(t, "Subject: Hello there\r\n\r\n", rep.FetchHeader)
	assert.Equal(t, len(msgPlain), rep.FetchLen)
	assert.Contains(t, rep.FlagsAfterRead, `\Seen`)
	assert.Contains(t, rep.Store, `\Flagged`)
	assert.Equal(t, []string{"1"}, rep.Expunge)
	assert.Contains(t, rep.Append, "APPEND completed")
	assert.Contains(t, rep.Status, "MESSAGES 3")
	assert.Contains(t, rep.Status, "UNSEEN 1")
}

// TestMbsync syncs a mailbox both ways with mbsync (isync) over STARTTLS:
// server → local Maildir, then a local new message and a local flag
// change → server.
func TestMbsync(t *testing.T) {
	mbsync := testutil.RequireTool(t, "mbsync")
	ts := newTestServer(t, Options{})
	ts.deliver(t, "INBOX", msgPlain)
	ts.deliver(t, "INBOX", msgMultipart)
	ts.deliver(t, "Archive", crlf("Subject: archived\n\nold stuff\n"), `\Seen`)

	dir := t.TempDir()
	local := filepath.Join(dir, "mail")
	host, port := testutil.HostPort(t, ts.addr)
	require.NoError(t, os.MkdirAll(local, 0o700))
	rc := filepath.Join(dir, "mbsyncrc")
	conf := `IMAPAccount test
Host ` + host + `
Port ` + port + `
User ` + testUser + `
Pass "` + testPass + `"
SSLType STARTTLS
CertificateFile ` + ts.certPEM + `
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path ` + local + `/
Inbox ` + local + `/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`
	require.NoError(t, os.WriteFile(rc, []byte(conf), 0o600))
	run := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, mbsync, "-c", rc, "-a").CombinedOutput()
		require.NoError(t, err, "mbsync: %s", out)
		t.Logf("mbsync: %s", out)
	}
	run()

	files := func(folder string) []string {
		var out []string
		for _, sub := range []string{"cur", "new"} {
			m, err := filepath.Glob(filepath.Join(local, folder, sub, "*"))
			require.NoError(t, err)
			out = append(out, m...)
		}
		return out
	}
	inbox := files("INBOX")
	require.Len(t, inbox, 2)
	var bodies []string
	for _, f := range inbox {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		bodies = append(bodies, string(b))
	}
	assert.Contains(t, strings.Join(bodies, ""), "quick brown fox")
	assert.Contains(t, strings.Join(bodies, ""), "inner body with zebra")
	arch := files("Archive")
	require.Len(t, arch, 1)
	assert.True(t, strings.HasSuffix(arch[0], ",S"), "archived message is seen locally: %s", arch[0])

	// Local changes: a new message in Archive, INBOX message flagged.
	newMsg := crlf("From: local@example.org\nSubject: written offline\n\nlocal body\n")
	require.NoError(t, os.WriteFile(filepath.Join(local, "Archive", "new", "1700000000.local.host"), []byte(newMsg), 0o600))
	var flaggedSubject string
	for _, f := range inbox {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "quick brown fox") {
			flaggedSubject = "Hello there"
			target := filepath.Join(local, "INBOX", "cur", filepath.Base(f))
			if i := strings.Index(target, ":2,"); i >= 0 {
				target = target[:i]
			}
			require.NoError(t, os.Rename(f, target+":2,F"))
		}
	}
	require.NotEmpty(t, flaggedSubject)
	run()

	c := ts.dial(t, nil)
	_, err := c.Select("Archive", nil).Wait()
	require.NoError(t, err)
	data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "written offline"}}}, nil).Wait()
	require.NoError(t, err)
	assert.Len(t, data.AllUIDs(), 1, "the local message reached the server")
	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	data, err = c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, nil).Wait()
	require.NoError(t, err)
	assert.Equal(t, []imap.UID{1}, data.AllUIDs(), "the local flag reached the server")
}

// TestFetchmail fetches over IMAP with implicit TLS, keep mode, delivering
// through an MDA into a file; a second run fetches nothing new.
func TestFetchmail(t *testing.T) {
	fetchmail := testutil.RequireTool(t, "fetchmail")
	ts := newTestServer(t, Options{})
	ts.deliver(t, "INBOX", msgPlain)
	ts.deliver(t, "INBOX", msgMultipart)

	dir := t.TempDir()
	mbox := filepath.Join(dir, "delivered")
	host, port := testutil.HostPort(t, ts.tlsAddr)
	rc := filepath.Join(dir, "fetchmailrc")
	conf := `set no syslog
poll ` + host + ` port ` + port + ` protocol IMAP timeout 30
  user "` + testUser + `" password "` + testPass + `"
  ssl sslcertck sslcertfile "` + ts.certPEM + `"
  keep
  mda "cat >> ` + mbox + `"
`
	require.NoError(t, os.WriteFile(rc, []byte(conf), 0o600))
	run := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, fetchmail, "-f", rc, "--nodetach", "--idfile", filepath.Join(dir, "ids"), "--pidfile", filepath.Join(dir, "pid"))
		cmd.Env = append(os.Environ(), "HOME="+dir, "FETCHMAILHOME="+dir)
		out, err := cmd.CombinedOutput()
		t.Logf("fetchmail: %s", out)
		return string(out), err
	}
	_, err := run()
	require.NoError(t, err)
	b, err := os.ReadFile(mbox)
	require.NoError(t, err)
	assert.Contains(t, string(b), "quick brown fox")
	assert.Contains(t, string(b), "inner body with zebra")
	assert.Equal(t, 2, strings.Count(string(b), "with IMAP (fetchmail"), "%s", b)

	// Keep mode: still on the server, now seen; a second run gets nothing
	// (fetchmail exits 1, "no mail").
	c := ts.dial(t, nil)
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 2, *st.NumMessages)
	assert.EqualValues(t, 0, *st.NumUnseen)
	_, err = run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode(), "exit 1 means no new mail")
	b2, err := os.ReadFile(mbox)
	require.NoError(t, err)
	assert.Equal(t, string(b), string(b2))
}
