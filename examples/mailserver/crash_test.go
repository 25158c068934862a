package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/pop3"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
)

// childEnv carries the command line of a mailserver run as a child process
// of the test binary (see TestMain).
const childEnv = "MAILSERVER_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Args = append([]string{"mailserver"}, argv...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is a mailserver process.
type child struct {
	cmd   *exec.Cmd
	addrs map[string]string
	log   *testutil.Buffer
}

// startChild runs the test binary as a mailserver with args and waits for
// its banner, from which it learns the listen addresses.
func startChild(t *testing.T, args []string) *child {
	t.Helper()
	b, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	c := &child{cmd: cmd, addrs: map[string]string{}, log: &testutil.Buffer{}}
	cmd.Stderr = c.log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("child log:\n%s", c.log)
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && strings.Contains(f[1], ":") {
				c.addrs[f[0]] = f[1]
			}
			if !signalled && len(f) > 0 && f[0] == "domains" {
				signalled = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
	case <-time.After(waitFor):
		t.Fatalf("child mailserver did not start:\n%s", c.log)
	}
	return c
}

// TestKillDuringLoad: clients submit mail, local and remote, while the
// server process is killed with SIGKILL; after a restart on the same data
// directory every message that got 250 is delivered (the local ones into
// the maildir, the remote ones through the recovered queue).
func TestKillDuringLoad(t *testing.T) {
	remotePort := testutil.FreePort(t)
	dns := dnstest.NewServer(t,
		"remote.test. 300 IN MX 10 mx.remote.test.",
		"mx.remote.test. 300 IN A 127.0.0.1",
	)
	remote := startServer(t, "", "-domain", "remote.test", "-user", "rick@remote.test:rick-secret",
		"-smtp", fmt.Sprintf("127.0.0.1:%d", remotePort))

	dir := t.TempDir()
	args := append(loopbackArgs(dir), "-user", alice+":"+alicePass, "-dns", dns.Addr(),
		"-outbound-port", fmt.Sprint(remotePort), "-retry-interval", "1s", "-log-level", "info")
	first := startChild(t, args)

	var (
		mu    sync.Mutex
		acked = map[string]string{} // subject → recipient
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := next.Add(1)
				rcpt := alice
				if n%2 == 0 {
					rcpt = "rick@remote.test"
				}
				subject := fmt.Sprintf("load-%d", n)
				err := submit(t, first.addrs["submission"], alice, alicePass, alice, []string{rcpt}, message(alice, rcpt, subject, "x"))
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[subject] = rcpt
				mu.Unlock()
			}
		}()
	}
	// Kill once a fair number of messages went through, mid-stream.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 30
	}, 2*waitFor, 10*time.Millisecond)
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	close(stop)
	wg.Wait()
	_ = first.cmd.Wait()

	mu.Lock()
	want := map[string][]string{}
	for subject, rcpt := range acked {
		want[rcpt] = append(want[rcpt], subject)
	}
	mu.Unlock()
	t.Logf("%d messages acknowledged before the kill (%d local, %d remote)", len(acked), len(want[alice]), len(want["rick@remote.test"]))

	second := startChild(t, args)
	requireSubjects(t, second.addrs["imap"], alice, alicePass, want[alice])
	requireSubjects(t, remote.Addr("imap"), "rick@remote.test", "rick-secret", want["rick@remote.test"])
}

// requireSubjects waits until the INBOX of user holds a message with each
// of the subjects.
func requireSubjects(t *testing.T, addr, user, pass string, subjects []string) {
	t.Helper()
	c := imapLogin(t, addr, user, pass, nil)
	deadline := time.Now().Add(2 * waitFor)
	for {
		sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		require.NoError(t, err)
		have := map[string]bool{}
		if sel.NumMessages > 0 {
			msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true}).Collect()
			require.NoError(t, err)
			for _, m := range msgs {
				have[m.Envelope.Subject] = true
			}
		}
		var missing []string
		for _, s := range subjects {
			if !have[s] {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d acknowledged messages missing: %v", user, len(missing), missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestGracefulShutdown: SIGTERM stops the process cleanly (exit status 0)
// and the next start finds the mail.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	args := append(loopbackArgs(dir), "-user", alice+":"+alicePass, "-log-format", "json")
	c := startChild(t, args)
	require.NoError(t, sendMX(t, c.addrs["smtp"], "bob@remote.test", []string{alice}, message("bob@remote.test", alice, "before sigterm", "x")))
	// An idle POP3 session and an idle IMAP session must not hold the
	// shutdown (the grace period is 30 s, the wait below shorter).
	pc, err := pop3.Dial(context.Background(), c.addrs["pop3"], pop3.ClientOptions{})
	require.NoError(t, err)
	defer pc.Close()
	require.NoError(t, pc.StartTLS(context.Background(), insecureTLS))
	require.NoError(t, pc.Login(context.Background(), alice, alicePass))
	imapLogin(t, c.addrs["imap"], alice, alicePass, nil)
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
	assert.Contains(t, c.log.String(), `"msg":"shutting down"`, "JSON logs")

	second := startChild(t, args)
	requireSubjects(t, second.addrs["imap"], alice, alicePass, []string{"before sigterm"})
}
