package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/postfixtest"
	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
)

// runTool runs an external client to completion and returns its output;
// a client that hangs is killed after toolTimeout so that the test fails
// instead of blocking the whole run.
func runTool(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var out testutil.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start(), cmd.String())
	timer := time.AfterFunc(toolTimeout, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	stopped := timer.Stop()
	require.True(t, stopped, "%s: killed after %v:\n%s", cmd.String(), toolTimeout, out.String())
	require.NoError(t, err, "%s:\n%s", cmd.String(), out.String())
	return out.String()
}

const toolTimeout = 2 * time.Minute

// TestSwaksAndPython: swaks sends over plain SMTP and over submission
// with STARTTLS and AUTH; Python's imaplib and poplib read both messages.
func TestSwaksAndPython(t *testing.T) {
	swaks := testutil.RequireTool(t, "swaks")
	python := testutil.RequireTool(t, "python3")
	ts := startServer(t, "", "-user", alice+":"+alicePass)

	runTool(t, exec.Command(swaks, "--server", ts.Addr("smtp"), "--from", "bob@remote.test", "--to", alice,
		"--header", "Subject: swaks plain", "--body", "via MX"))
	runTool(t, exec.Command(swaks, "--server", ts.Addr("submission"), "--tls", "--auth", "PLAIN",
		"--auth-user", alice, "--auth-password", alicePass, "--from", alice, "--to", alice,
		"--header", "Subject: swaks submission", "--body", "via submission"))

	host, imapPort := testutil.HostPort(t, ts.Addr("imap"))
	_, pop3sPort := testutil.HostPort(t, ts.Addr("pop3s"))
	script := fmt.Sprintf(`
import imaplib, poplib, ssl, sys
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4(%[1]q, %[2]s)
m.starttls(ssl_context=ctx)
m.login(%[4]q, %[5]q)
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"2"], data
typ, data = m.search(None, "SUBJECT", "swaks")
assert data == [b"1 2"], data
typ, data = m.fetch("1:2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
subjects = sorted(p[1].decode().strip() for p in data if isinstance(p, tuple))
assert subjects == ["Subject: swaks plain", "Subject: swaks submission"], subjects
m.logout()
p = poplib.POP3_SSL(%[1]q, %[3]s, context=ctx)
p.user(%[4]q)
p.pass_(%[5]q)
count, size = p.stat()
assert count == 2, count
resp, lines, octets = p.retr(2)
assert b"via submission" in lines, lines
p.quit()
print("python ok")
`, host, imapPort, pop3sPort, alice, alicePass)
	out := runTool(t, exec.Command(python, "-c", script))
	assert.Contains(t, out, "python ok")
}

// TestFetchmailAndMbsync: fetchmail collects over POP3 (keeping the
// message) and mbsync mirrors the IMAP INBOX into a local maildir.
func TestFetchmailAndMbsync(t *testing.T) {
	fetchmail := testutil.RequireTool(t, "fetchmail")
	mbsync := testutil.RequireTool(t, "mbsync")
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	require.NoError(t, sendMX(t, ts.Addr("smtp"), "bob@remote.test", []string{alice}, message("bob@remote.test", alice, "for the collectors", "collect me")))
	waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 1)

	home := t.TempDir()
	t.Run("fetchmail pop3", func(t *testing.T) {
		host, port := testutil.HostPort(t, ts.Addr("pop3s"))
		out := filepath.Join(home, "fetched.mbox")
		rc := filepath.Join(home, "fetchmailrc")
		require.NoError(t, os.WriteFile(rc, []byte(fmt.Sprintf(
			"set no syslog\npoll %s service %s protocol POP3 uidl\n  user %q password %q\n  ssl no sslcertck\n  keep\n  mda \"/bin/sh -c 'cat >> %s'\"\n",
			host, port, alice, alicePass, out)), 0o600))
		cmd := exec.Command(fetchmail, "-f", rc, "--nodetach", "--pidfile", filepath.Join(home, "fetchmail.pid"), "-i", filepath.Join(home, "fetchids"))
		cmd.Env = append(os.Environ(), "HOME="+home)
		runTool(t, cmd)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Contains(t, string(b), "Subject: for the collectors")
	})
	t.Run("mbsync imap", func(t *testing.T) {
		_, port := testutil.HostPort(t, ts.Addr("imaps"))
		// The self-signed certificate names localhost; mbsync checks the
		// name, and verifies the chain against the file given.
		host := "localhost"
		local := filepath.Join(home, "Mail")
		require.NoError(t, os.MkdirAll(local, 0o700))
		rc := filepath.Join(home, "mbsyncrc")
		require.NoError(t, os.WriteFile(rc, []byte(fmt.Sprintf(`IMAPAccount test
Host %s
Port %s
User %s
Pass %s
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel inbox
Far :remote:INBOX
Near :local:INBOX
Create Near
Sync Pull
SyncState *
`, host, port, alice, alicePass, filepath.Join(ts.dataDir, "tls", "cert.pem"), local, local)), 0o600))
		cmd := exec.Command(mbsync, "-c", rc, "inbox")
		cmd.Env = append(os.Environ(), "HOME="+home)
		runTool(t, cmd)
		entries, err := os.ReadDir(filepath.Join(local, "INBOX", "cur"))
		require.NoError(t, err)
		newEntries, _ := os.ReadDir(filepath.Join(local, "INBOX", "new"))
		require.Len(t, append(entries, newEntries...), 1, "one message mirrored")
	})
}

// TestPostfixInterop: a private Postfix instance relays into mailblocks
// (relayhost = the mailserver's MX), and mailblocks delivers into Postfix
// found through an MX record of the test DNS server.
func TestPostfixInterop(t *testing.T) {
	postfixtest.Require(t)
	mbPort := testutil.FreePort(t)
	pf := postfixtest.Start(t, postfixtest.Options{Relay: fmt.Sprintf("127.0.0.1:%d", mbPort)})
	_, pfPort := testutil.HostPort(t, pf.Addr)
	dns := dnstest.NewServer(t,
		"postfix.test. 300 IN MX 10 mx.postfix.test.",
		"mx.postfix.test. 300 IN A 127.0.0.1",
	)
	ts := startServer(t, "", "-user", alice+":"+alicePass, "-smtp", fmt.Sprintf("127.0.0.1:%d", mbPort),
		"-dns", dns.Addr(), "-outbound-port", pfPort, "-retry-interval", "1s")

	t.Run("postfix relays into mailblocks", func(t *testing.T) {
		require.NoError(t, sendMX(t, pf.Addr, "sender@postfix.test", []string{alice}, message("sender@postfix.test", alice, "through postfix", "relayed")))
		got := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 1)
		assert.Contains(t, got[0], "Subject: through postfix")
		assert.Contains(t, got[0], "by mx.postfix.test (Postfix)", "Postfix's Received header")
	})
	t.Run("mailblocks delivers into postfix", func(t *testing.T) {
		require.NoError(t, submit(t, ts.Addr("submission"), alice, alicePass, alice, []string{"box@postfix.test"}, message(alice, "box@postfix.test", "to postfix", "hello postfix")))
		msgs, err := pf.WaitMessages("box", 1, waitFor)
		require.NoError(t, err)
		assert.Contains(t, string(msgs[0]), "Subject: to postfix")
		assert.Contains(t, string(msgs[0]), "by mail.example.test (mailblocks)")
	})
}

// TestSendmailCommand: the sendmail example, built as a real program, pipes
// a message into the submission listener as a Unix script would.
func TestSendmailCommand(t *testing.T) {
	goTool := testutil.RequireTool(t, "go")
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	bin := filepath.Join(t.TempDir(), "sendmail")
	build := exec.Command(goTool, "build", "-o", bin, "../sendmail")
	runTool(t, build)

	cmd := exec.Command(bin, "-t", "-i")
	cmd.Env = append(os.Environ(),
		"MAILBLOCKS_SMTP="+ts.Addr("submission"), "MAILBLOCKS_INSECURE=1",
		"MAILBLOCKS_USER="+alice, "MAILBLOCKS_PASSWORD="+alicePass)
	cmd.Stdin = strings.NewReader("To: " + alice + "\nSubject: from a script\n\nsent by cron at " + time.Now().Format(time.RFC3339) + "\n")
	runTool(t, cmd)
	got := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 1)
	assert.Contains(t, got[0], "Subject: from a script")
	assert.Contains(t, got[0], "From: <"+alice+">", "From added from the sender")
	assert.Contains(t, got[0], "Message-ID: <", "submission adds a Message-ID")
}
