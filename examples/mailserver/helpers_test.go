package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

const (
	alice     = "alice@example.test"
	alicePass = "alice-secret"
	waitFor   = 30 * time.Second
)

// testServer is a mailserver started in-process with every listener on a
// random loopback port and its data in a temporary directory.
type testServer struct {
	*mailServer
	dataDir string
	stderr  *testutil.Buffer // the server's log, for failure messages
	stop    func()           // shuts the server down; safe to call twice
}

// loopbackArgs puts every listener on 127.0.0.1:0.
func loopbackArgs(dataDir string) []string {
	args := []string{"-data", dataDir, "-log-level", "debug"}
	for _, svc := range services {
		args = append(args, "-"+svc, "127.0.0.1:0")
	}
	return args
}

// startServer runs a mailserver until the test ends. Extra flags are added
// to the loopback defaults; dataDir "" means a new temporary directory.
func startServer(t *testing.T, dataDir string, extra ...string) *testServer {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	args := append(loopbackArgs(dataDir), extra...)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{dataDir: dataDir, stderr: &testutil.Buffer{}}
	ready := make(chan *mailServer, 1)
	done := make(chan error, 1)
	go func() {
		done <- runWith(ctx, args, io.Discard, ts.stderr, func(m *mailServer) { ready <- m })
	}()
	select {
	case m := <-ready:
		ts.mailServer = m
	case err := <-done:
		cancel()
		t.Fatalf("mailserver did not start: %v\n%s", err, ts.stderr)
	case <-time.After(waitFor):
		cancel()
		t.Fatalf("mailserver did not start within %v\n%s", waitFor, ts.stderr)
	}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("shutdown: %v", err)
				}
			case <-time.After(waitFor):
				t.Errorf("mailserver did not shut down within %v", waitFor)
			}
		})
	}
	t.Cleanup(func() {
		ts.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", ts.stderr)
		}
	})
	return ts
}

var insecureTLS = &tls.Config{InsecureSkipVerify: true}

// sendMX sends a message to the MX listener, as another MTA would. Every
// failure is returned (callers assert on it), so that it may also be
// called from a require.Eventually condition.
func sendMX(t *testing.T, addr, from string, to []string, msg string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("peer.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// submit sends a message through the submission listener with STARTTLS
// and AUTH PLAIN.
func submit(t *testing.T, addr, user, pass, from string, to []string, msg string) error {
	t.Helper()
	c, err := smtp.DialStartTLS(addr, insecureTLS)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		return err
	}
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

func message(from, to, subject, body string) string {
	return fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n%s\r\n",
		from, to, subject, strings.ReplaceAll(subject, " ", "."), body)
}

// imapLogin opens an IMAP session with STARTTLS.
func imapLogin(t *testing.T, addr, user, pass string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = insecureTLS
	c, err := imapclient.DialStartTLS(addr, opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Login(user, pass).Wait())
	return c
}

// waitIMAP polls a folder until it holds at least n messages and returns
// their full content, oldest first.
func waitIMAP(t *testing.T, addr, user, pass, folder string, n int) []string {
	t.Helper()
	c := imapLogin(t, addr, user, pass, nil)
	deadline := time.Now().Add(waitFor)
	for {
		sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		require.NoError(t, err)
		if int(sel.NumMessages) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s has %d messages, want %d", user, folder, sel.NumMessages, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	require.NoError(t, err)
	var out []string
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, string(b.Bytes))
		}
	}
	return out
}
