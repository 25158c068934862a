package smtpserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

// run runs a command with a deadline and returns its combined output and
// exit error.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func TestSwaks(t *testing.T) {
	swaks := testutil.RequireTool(t, "swaks")
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxMessageBytes = 64 << 10
	srv := New(opts)
	mx := serve(t, srv, MX)
	sub := serve(t, srv, Submission)

	base := func(addr string) []string {
		h, p := testutil.HostPort(t, addr)
		return []string{"--server", h, "--port", p, "--helo", "swaks.test", "--timeout", "30"}
	}

	t.Run("plain", func(t *testing.T) {
		out, err := run(t, swaks, append(base(mx), "--from", "a@remote.test", "--to", "alice@example.org",
			"--header", "Subject: swaks plain", "--body", "hello from swaks")...)
		require.NoError(t, err, out)
		m := rec.next(t)
		assert.Equal(t, "a@remote.test", m.env.From)
		assert.Contains(t, m.body, "Subject: swaks plain")
		assert.Contains(t, m.body, "hello from swaks")
		assert.True(t, strings.HasPrefix(m.body, "Received: from swaks.test"))
	})
	t.Run("relay denied", func(t *testing.T) {
		out, err := run(t, swaks, append(base(mx), "--from", "a@remote.test", "--to", "x@remote.test")...)
		require.Error(t, err)
		assert.Contains(t, out, "554 5.7.1")
	})
	t.Run("pipelining", func(t *testing.T) {
		out, err := run(t, swaks, append(base(mx), "--pipeline", "--from", "a@remote.test",
			"--to", "alice@example.org,bob@example.org", "--body", "pipelined")...)
		require.NoError(t, err, out)
		assert.Contains(t, out, "PIPELINING")
		m := rec.next(t)
		assert.Len(t, m.env.Recipients, 2)
	})
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run("starttls auth "+mech, func(t *testing.T) {
			out, err := run(t, swaks, append(base(sub), "--tls", "--auth", mech,
				"--auth-user", "alice@example.org", "--auth-password", "secret",
				"--from", "alice@example.org", "--to", "friend@remote.test", "--body", "via "+mech)...)
			require.NoError(t, err, out)
			m := rec.next(t)
			assert.Equal(t, "alice@example.org", m.env.AuthUser)
			assert.NotNil(t, m.env.TLS)
			assert.Contains(t, m.body, "with ESMTPSA id")
			assert.Contains(t, m.body, "via "+mech)
		})
	}
	t.Run("auth refused without TLS", func(t *testing.T) {
		out, err := run(t, swaks, append(base(sub), "--auth", "PLAIN",
			"--auth-user", "alice@example.org", "--auth-password", "secret",
			"--from", "alice@example.org", "--to", "friend@remote.test")...)
		require.Error(t, err, out)
	})
	t.Run("bad password", func(t *testing.T) {
		out, err := run(t, swaks, append(base(sub), "--tls", "--auth", "PLAIN",
			"--auth-user", "alice@example.org", "--auth-password", "wrong",
			"--from", "alice@example.org", "--to", "friend@remote.test")...)
		require.Error(t, err)
		assert.Contains(t, out, "535 5.7.8")
	})
	t.Run("oversized", func(t *testing.T) {
		body := strings.Repeat(strings.Repeat("z", 76)+"\n", 1000) // 77 KB > 64 KiB
		out, err := run(t, swaks, append(base(mx), "--from", "a@remote.test", "--to", "alice@example.org", "--body", body)...)
		require.Error(t, err)
		assert.Contains(t, out, "552 5.3.4")
	})
	t.Run("SMTPUTF8 address", func(t *testing.T) {
		// swaks does not send the SMTPUTF8 parameter, so the non-ASCII
		// address is refused as RFC 6531 3.4 requires (Python below sends
		// it and succeeds).
		out, err := run(t, swaks, append(base(mx), "--from", "a@remote.test", "--to", "用户@example.org")...)
		require.Error(t, err)
		assert.Contains(t, out, "553 5.6.7")
	})
}

const pyScript = `
import smtplib, ssl, sys
from email.message import EmailMessage
host, mx, sub = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

# Plain MX delivery.
with smtplib.SMTP(host, mx, local_hostname="py.test", timeout=30) as s:
    s.sendmail("a@remote.test", ["alice@example.org"], b"Subject: py plain\r\n\r\nplain\r\n")

# SMTPUTF8: send_message adds the parameter for non-ASCII addresses.
m = EmailMessage()
m["From"] = "发件人@remote.test"
m["To"] = "用户@example.org"
m["Subject"] = "你好"
m.set_content("utf8 body")
with smtplib.SMTP(host, mx, local_hostname="py.test", timeout=30) as s:
    s.send_message(m)

# Refusals are reported per recipient.
with smtplib.SMTP(host, mx, local_hostname="py.test", timeout=30) as s:
    try:
        s.sendmail("a@remote.test", ["nobody@example.org"], b"Subject: x\r\n\r\nx\r\n")
        sys.exit("unknown user accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code, msg = e.recipients["nobody@example.org"]
        assert code == 550 and msg.startswith(b"5.1.1"), (code, msg)

# Submission: STARTTLS then AUTH (smtplib prefers CRAM-MD5, PLAIN, LOGIN).
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP(host, sub, local_hostname="py.test", timeout=30) as s:
    s.starttls(context=ctx)
    s.login("bob@example.org", "hunter2")
    s.sendmail("bob@example.org", ["friend@remote.test"], b"Subject: py sub\r\n\r\nsubmitted\r\n")
print("ok")
`

func TestPythonSmtplib(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = testutil.RequireTool(t, "python3")
	}
	rec := newRecorder()
	srv := New(testOptions(t, rec))
	mx := serve(t, srv, MX)
	sub := serve(t, srv, Submission)
	h, mxPort := testutil.HostPort(t, mx)
	_, subPort := testutil.HostPort(t, sub)
	out, err := run(t, py, "-c", pyScript, h, mxPort, subPort)
	require.NoError(t, err, out)
	require.Equal(t, "ok\n", out)

	m := rec.next(t)
	assert.Contains(t, m.body, "Subject: py plain")
	m = rec.next(t)
	assert.True(t, m.env.SMTPUTF8)
	assert.Equal(t, "发件人@remote.test", m.env.From)
	assert.Equal(t, "用户@example.org", m.env.Recipients[0].Address)
	assert.Contains(t, m.body, "with UTF8SMTP id")
	m = rec.next(t)
	assert.Equal(t, "bob@example.org", m.env.AuthUser)
	assert.Contains(t, m.body, "with ESMTPSA id")
	assert.Contains(t, m.body, "Message-ID: <"+m.env.ID+"@mx.test>", "submission adds Message-ID")
	assert.Equal(t, 3, rec.count(), fmt.Sprint(rec.count()))
}
