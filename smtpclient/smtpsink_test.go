package smtpclient_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/smtpclient"
)

const smtpSinkPath = "/usr/sbin/smtp-sink"

// sink is a Postfix smtp-sink(1) child process that dumps every message
// it receives into a directory.
type sink struct {
	port int
	dir  string
	cmd  *exec.Cmd
	out  testutil.Buffer // its stdout and stderr
}

var sinkCounters = regexp.MustCompile(`sess=(\d+) quit=(\d+) mesg=(\d+)`)

// counters returns the last "sess= quit= mesg=" line that -c printed.
func (s *sink) counters() (sess, quit, mesg int) {
	all := sinkCounters.FindAllStringSubmatch(s.out.String(), -1)
	if len(all) == 0 {
		return 0, 0, 0
	}
	m := all[len(all)-1]
	sess, _ = strconv.Atoi(m[1])
	quit, _ = strconv.Atoi(m[2])
	mesg, _ = strconv.Atoi(m[3])
	return
}

// startSink runs smtp-sink on a free 127.0.0.1 port. Locally a missing
// binary skips the test; in CI (CI set) it fails it.
func startSink(t testing.TB, extraArgs ...string) *sink {
	t.Helper()
	return runSink(t, true, extraArgs...)
}

// startSinkNoDump runs smtp-sink without writing messages to disk, for
// benchmarks.
func startSinkNoDump(t testing.TB) *sink {
	t.Helper()
	return runSink(t, false)
}

func runSink(t testing.TB, dump bool, extraArgs ...string) *sink {
	t.Helper()
	testutil.RequireTool(t, smtpSinkPath) // Debian package postfix
	dir := t.TempDir()
	for attempt := 0; attempt < 10; attempt++ {
		// smtp-sink cannot report the port it bound, so pick a free one;
		// if another process takes it meanwhile, try again.
		port := testutil.FreePort(t)
		s := &sink{port: port, dir: dir}
		args := []string{"-c"}
		if dump {
			args = append(args, "-d", filepath.Join(dir, "%Y%m%d%H%M%S."))
		}
		if os.Geteuid() == 0 {
			// smtp-sink refuses to run as root without a user to switch to.
			args = append(args, "-u", "root")
		}
		args = append(args, extraArgs...)
		args = append(args, fmt.Sprintf("127.0.0.1:%d", port), "100")
		s.cmd = exec.Command(smtpSinkPath, args...)
		s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
		require.NoError(t, s.cmd.Start())
		exited := make(chan struct{})
		go func() { s.cmd.Wait(); close(exited) }()
		// Wait until it accepts connections, or exits (port taken).
		up := false
		deadline := time.Now().Add(10 * time.Second)
		for !up && time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
				up = true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !up {
			s.cmd.Process.Kill()
			<-exited
			t.Logf("smtp-sink on port %d did not start: %s", port, s.out.String())
			continue
		}
		t.Cleanup(func() {
			s.cmd.Process.Kill()
			<-exited
		})
		return s
	}
	t.Fatal("could not start smtp-sink")
	return nil
}

// dumps returns the message files smtp-sink wrote.
func (s *sink) dumps(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(s.dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		require.NoError(t, err)
		out = append(out, string(b))
	}
	return out
}

// TestPostfixSmtpSink delivers into Postfix's smtp-sink: several messages
// over one reused session, checked through smtp-sink's counters and its
// message dumps.
func TestPostfixSmtpSink(t *testing.T) {
	s := startSink(t)
	c := newClient(t, smtpclient.Options{Port: s.port})
	const n = 5
	for i := range n {
		env := envelope(fmt.Sprintf("sender%d@client.test", i), literal("rcpt1"), literal("rcpt2"))
		body := fmt.Sprintf("Subject: message %d\r\n\r\nbody of message %d\r\n", i, i)
		st := deliver(t, c, env, body)
		for _, x := range st {
			require.NoError(t, x.Err)
			assert.True(t, x.RemoteDSN, "smtp-sink advertises DSN")
		}
	}
	require.NoError(t, c.Close()) // QUIT
	// smtp-sink updates its counters when a session ends; "sess" counts
	// ended sessions, including the probe startSink made.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, quit, _ := s.counters(); quit >= 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sess, quit, mesg := s.counters()
	assert.Equal(t, 2, sess, "the probe and one session for all messages: %q", s.out.String())
	assert.Equal(t, 1, quit)
	assert.Equal(t, n, mesg)

	dumps := s.dumps(t)
	require.Len(t, dumps, n)
	var subjects []string
	for _, d := range dumps {
		assert.Contains(t, d, "X-Rcpt-Args: <rcpt1@[127.0.0.1]>")
		assert.Contains(t, d, "X-Rcpt-Args: <rcpt2@[127.0.0.1]>")
		assert.Contains(t, d, "X-Helo-Args: client.test")
		for _, l := range strings.Split(d, "\n") {
			if strings.HasPrefix(l, "Subject: ") {
				subjects = append(subjects, strings.TrimSpace(l))
			}
		}
	}
	assert.ElementsMatch(t, []string{"Subject: message 0", "Subject: message 1", "Subject: message 2", "Subject: message 3", "Subject: message 4"}, subjects)
}

// TestPostfixSmtpSinkRejects uses smtp-sink's fault injection: soft
// (-r) and hard (-f) rejection of RCPT.
func TestPostfixSmtpSinkRejects(t *testing.T) {
	for _, tt := range []struct {
		flag string
		temp bool
	}{{"-r", true}, {"-f", false}} {
		t.Run(tt.flag, func(t *testing.T) {
			s := startSink(t, tt.flag, "RCPT")
			c := newClient(t, smtpclient.Options{Port: s.port})
			st := deliver(t, c, envelope("a@client.test", literal("b")), testBody)
			ce, me := reply(t, st[0].Err)
			assert.Equal(t, "RCPT TO", ce.Command)
			assert.Equal(t, tt.temp, me.Temporary())
			assert.Empty(t, s.dumps(t))
		})
	}
}
