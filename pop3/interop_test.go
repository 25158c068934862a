package pop3

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

// runTool runs a real client with a deadline and returns its output.
func runTool(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*ioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out), err
}

type poplibResult struct {
	Welcome string              `json:"welcome"`
	STLS    string              `json:"stls"`
	Capa    map[string][]string `json:"capa"`
	User    string              `json:"user"`
	Pass    string              `json:"pass"`
	Stat    []int               `json:"stat"`
	List    []string            `json:"list"`
	UIDL    []string            `json:"uidl"`
	Retr    []struct {
		Resp  string   `json:"resp"`
		Lines []string `json:"lines"`
	} `json:"retr"`
	Top    [][]string `json:"top"`
	Retr99 string     `json:"retr99"`
	Dele   string     `json:"dele"`
	Quit   string     `json:"quit"`
}

// TestPythonPoplib runs Python's poplib against the server, in clear text
// and with STLS.
func TestPythonPoplib(t *testing.T) {
	python := testutil.RequireTool(t, "/usr/bin/python3")
	cert := testutil.NewCert(t, testutil.CertOptions{})
	certFile, _ := cert.WriteFiles(t)
	for _, mode := range []string{"plain", "stls"} {
		t.Run(mode, func(t *testing.T) {
			st := threeMessages(t)
			opts := testOptions()
			args := []string{"testdata/poplib_session.py"}
			if mode == "stls" {
				opts.AllowInsecureAuth = false
				opts.TLSConfig = cert.ServerConfig()
			}
			_, addr := startServer(t, st, opts)
			uidl := []string{"1 " + st.uidl(t, 1), "2 " + st.uidl(t, 2), "3 " + st.uidl(t, 3)}
			host, port, _ := net.SplitHostPort(addr)
			// The certificate is for "localhost" and 127.0.0.1.
			args = append(args, host, port, "u", "pw")
			if mode == "stls" {
				args = append(args, certFile)
			}
			out, err := runTool(t, nil, python, args...)
			require.NoError(t, err)
			var r poplibResult
			require.NoError(t, json.Unmarshal([]byte(out), &r))

			assert.Equal(t, "+OK pop.test POP3 server ready", r.Welcome)
			if mode == "stls" {
				assert.Equal(t, "+OK Begin TLS negotiation", r.STLS)
			}
			assert.Contains(t, r.Capa, "UIDL")
			assert.Equal(t, []string{"PLAIN"}, r.Capa["SASL"])
			assert.Equal(t, "+OK send PASS", r.User)
			assert.Equal(t, "+OK maildrop locked and ready", r.Pass)
			assert.Equal(t, []int{3, 90}, r.Stat)
			assert.Equal(t, []string{"1 34", "2 25", "3 31"}, r.List)
			assert.Equal(t, uidl, r.UIDL)
			require.Len(t, r.Retr, 3)
			assert.Equal(t, "+OK 34 octets", r.Retr[0].Resp)
			assert.Equal(t, []string{"Subject: one", "", "Hello", ".", "..dots"}, r.Retr[0].Lines)
			assert.Equal(t, []string{"Subject: two", "", "bare LF"}, r.Retr[1].Lines)
			assert.Equal(t, []string{"Subject: three", "", "no final CRLF"}, r.Retr[2].Lines)
			assert.Equal(t, [][]string{{"Subject: one", ""}, {"Subject: two", ""}, {"Subject: three", ""}}, r.Top)
			assert.Equal(t, "-ERR no such message, only 3 messages in maildrop", r.Retr99)
			assert.Equal(t, "+OK message 1 deleted", r.Dele)
			assert.Equal(t, "+OK pop.test POP3 server signing off (2 messages left)", r.Quit)
			assert.Equal(t, []string{msg2, msg3}, st.inbox(t, "u@example.org"))
		})
	}
}

// fetchmail runs fetchmail once against addr with the given server and
// user options, delivering into mbox; it returns the exit code (0: mail
// fetched, 1: no mail). The plaintext tests give sslproto an empty value so that
// fetchmail does not try STLS.
func fetchmail(t *testing.T, home, addr, serverOpts, options, mbox string) int {
	t.Helper()
	bin := testutil.RequireTool(t, "fetchmail")
	host, port, _ := net.SplitHostPort(addr)
	rc := filepath.Join(home, "fetchmailrc")
	conf := fmt.Sprintf("set no bouncemail\n"+
		"poll %s with proto POP3 port %s auth password %s\n"+
		"  user \"u@example.org\" there with password \"pw\" is \"nobody\" here\n"+
		"  options %s\n"+
		"  mda \"cat >> %s\"\n", host, port, serverOpts, options, mbox)
	require.NoError(t, os.WriteFile(rc, []byte(conf), 0o600))
	_, err := runTool(t, []string{"HOME=" + home, "FETCHMAILHOME=" + home},
		bin, "-f", rc, "--nodetach", "--pidfile", filepath.Join(home, "pid"),
		"--idfile", filepath.Join(home, "idfile"), "-v")
	if err == nil {
		return 0
	}
	ee, ok := err.(*exec.ExitError)
	require.True(t, ok, "fetchmail: %v", err)
	return ee.ExitCode()
}

// fetched returns the Subject lines delivered into mbox, in order.
func fetched(t *testing.T, mbox string) []string {
	t.Helper()
	b, err := os.ReadFile(mbox)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var subjects []string
	for _, l := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSuffix(l, "\r"), "Subject: "); ok {
			subjects = append(subjects, s)
		}
	}
	return subjects
}

func TestFetchmail(t *testing.T) {
	testutil.RequireTool(t, "fetchmail")
	t.Run("keep", func(t *testing.T) {
		st := threeMessages(t)
		_, addr := startServer(t, st, testOptions())
		home := t.TempDir()
		mbox := filepath.Join(home, "mbox")
		require.Equal(t, 0, fetchmail(t, home, addr, "", "keep fetchall no sslcertck sslproto ''", mbox))
		assert.Equal(t, []string{"one", "two", "three"}, fetched(t, mbox))
		assert.Len(t, st.inbox(t, "u@example.org"), 3)
		b, err := os.ReadFile(mbox)
		require.NoError(t, err)
		assert.Contains(t, string(b), "\n.\n..dots\n", "byte-stuffing undone")
	})
	t.Run("delete", func(t *testing.T) {
		st := threeMessages(t)
		_, addr := startServer(t, st, testOptions())
		home := t.TempDir()
		mbox := filepath.Join(home, "mbox")
		require.Equal(t, 0, fetchmail(t, home, addr, "", "nokeep no sslcertck sslproto ''", mbox))
		assert.Equal(t, []string{"one", "two", "three"}, fetched(t, mbox))
		assert.Empty(t, st.inbox(t, "u@example.org"))
		// Nothing left: exit code 1.
		require.Equal(t, 1, fetchmail(t, home, addr, "", "nokeep no sslcertck sslproto ''", mbox))
	})
	t.Run("only new by UIDL", func(t *testing.T) {
		st := threeMessages(t)
		_, addr := startServer(t, st, testOptions())
		home := t.TempDir()
		mbox := filepath.Join(home, "mbox")
		require.Equal(t, 0, fetchmail(t, home, addr, "uidl", "keep no sslcertck sslproto ''", mbox))
		assert.Equal(t, []string{"one", "two", "three"}, fetched(t, mbox))
		idfile, err := os.ReadFile(filepath.Join(home, "idfile"))
		require.NoError(t, err)
		assert.Contains(t, string(idfile), st.uidl(t, 3))

		require.Equal(t, 1, fetchmail(t, home, addr, "uidl", "keep no sslcertck sslproto ''", mbox), "nothing new")
		st.deliver(t, "u@example.org", "Subject: four\r\n\r\nnew\r\n")
		require.Equal(t, 0, fetchmail(t, home, addr, "uidl", "keep no sslcertck sslproto ''", mbox))
		assert.Equal(t, []string{"one", "two", "three", "four"}, fetched(t, mbox))
		assert.Len(t, st.inbox(t, "u@example.org"), 4)
	})
	t.Run("STLS with certificate check", func(t *testing.T) {
		st := threeMessages(t)
		cert := testutil.NewCert(t, testutil.CertOptions{})
		certFile, _ := cert.WriteFiles(t)
		opts := testOptions()
		opts.AllowInsecureAuth = false
		opts.TLSConfig = cert.ServerConfig()
		_, addr := startServer(t, st, opts)
		home := t.TempDir()
		mbox := filepath.Join(home, "mbox")
		require.Equal(t, 0, fetchmail(t, home, addr, "",
			fmt.Sprintf("nokeep sslproto 'tls1.2+' sslcertck sslcertfile %q sslcommonname localhost", certFile), mbox))
		assert.Equal(t, []string{"one", "two", "three"}, fetched(t, mbox))
		assert.Empty(t, st.inbox(t, "u@example.org"))
	})
}
