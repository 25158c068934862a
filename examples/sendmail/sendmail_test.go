package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		want    invocation
		wantErr bool
	}{
		{args: []string{"a@x.test"}, want: invocation{rcpts: []string{"a@x.test"}}},
		{args: []string{"-t", "-i"}, want: invocation{fromHeaders: true, ignoreDots: true}},
		{args: []string{"-oi", "-f", "me@x.test", "b@y.test"}, want: invocation{ignoreDots: true, from: "me@x.test", rcpts: []string{"b@y.test"}}},
		{args: []string{"-f<me@x.test>", "-FMe Myself", "b@y.test"}, want: invocation{from: "me@x.test", fullName: "Me Myself", rcpts: []string{"b@y.test"}}},
		{args: []string{"-r", "me@x.test", "-odi", "-oem", "-B8BITMIME", "--", "-odd@x.test"}, want: invocation{from: "me@x.test", rcpts: []string{"-odd@x.test"}}},
		{args: []string{"-f"}, wantErr: true},
		{args: []string{"-bp"}, wantErr: true},
		{args: []string{"-q"}, wantErr: true},
		{args: []string{"-Z"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := parseArgs(tt.args)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPrepare(t *testing.T) {
	in := "To: A <a@x.test>, b@y.test\nCc: c@z.test\nBcc: hidden@z.test\nSubject: hi\n\nline 1\n.\nafter the dot\n"

	t.Run("-t stops at dot", func(t *testing.T) {
		msg, rcpts, err := prepare(strings.NewReader(in), invocation{fromHeaders: true, from: "me@x.test", fullName: "Me"})
		require.NoError(t, err)
		assert.Equal(t, []string{"a@x.test", "b@y.test", "c@z.test", "hidden@z.test"}, rcpts)
		b, err := io.ReadAll(msg)
		require.NoError(t, err)
		s := string(b)
		assert.NotContains(t, s, "Bcc")
		assert.NotContains(t, s, "hidden")
		assert.Contains(t, s, `From: "Me" <me@x.test>`)
		assert.Contains(t, s, "line 1\n")
		assert.NotContains(t, s, "after the dot")
	})
	t.Run("-i keeps the dot line", func(t *testing.T) {
		msg, rcpts, err := prepare(strings.NewReader(in), invocation{ignoreDots: true, from: "me@x.test", rcpts: []string{"d@x.test", "D@x.test"}})
		require.NoError(t, err)
		assert.Equal(t, []string{"d@x.test"}, rcpts, "duplicates are removed")
		b, err := io.ReadAll(msg)
		require.NoError(t, err)
		assert.Contains(t, string(b), "\n.\nafter the dot\n")
		assert.Contains(t, string(b), "Bcc: hidden@z.test", "without -t the header is left alone")
	})
	t.Run("existing From kept", func(t *testing.T) {
		msg, _, err := prepare(strings.NewReader("From: other@x.test\n\nbody\n"), invocation{from: "me@x.test"})
		require.NoError(t, err)
		b, _ := io.ReadAll(msg)
		assert.Contains(t, string(b), "From: other@x.test")
		assert.NotContains(t, string(b), "me@x.test")
	})
	t.Run("bad To header", func(t *testing.T) {
		_, _, err := prepare(strings.NewReader("To: <<<\n\nbody\n"), invocation{fromHeaders: true})
		require.Error(t, err)
	})
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"network", errors.New("connection refused"), exTempFail},
		{"4xx", &submitError{step: "MAIL FROM", err: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}}}, exTempFail},
		{"unknown user", &submitError{step: "RCPT", rcpt: "x@y", err: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}}}, exNoUser},
		{"relay denied", &submitError{step: "RCPT", rcpt: "x@y", err: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}}}, exUnavailable},
		{"too big", &submitError{step: "end of DATA", err: &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}}}, exUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, exitCode(tt.err))
		})
	}
}

// recorder is a go-smtp backend that keeps what it received.
type recorder struct {
	mu    sync.Mutex
	from  string
	rcpts []string
	data  []byte
	auth  string
}

func (r *recorder) NewSession(*smtp.Conn) (smtp.Session, error) { return &recSession{r: r}, nil }

type recSession struct{ r *recorder }

func (s *recSession) Mail(from string, _ *smtp.MailOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.from = from
	return nil
}
func (s *recSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "unknown@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.rcpts = append(s.r.rcpts, to)
	return nil
}
func (s *recSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.data = b
	return err
}
func (s *recSession) Reset()        {}
func (s *recSession) Logout() error { return nil }

func startRecorder(t *testing.T) (*recorder, string) {
	t.Helper()
	rec := &recorder{}
	srv := smtp.NewServer(rec)
	srv.Domain = "sink.test"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return rec, l.Addr().String()
}

// TestRunOverSocket submits through a real SMTP server on loopback, the
// way a script piping into sendmail would.
func TestRunOverSocket(t *testing.T) {
	rec, addr := startRecorder(t)
	env := map[string]string{"MAILBLOCKS_SMTP": addr, "MAILBLOCKS_TLS": "none"}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var stderr bytes.Buffer
	in := "To: a@x.test\nBcc: b@x.test\nSubject: piped\n\n.leading dot\nbody\n"
	code := run(ctx, []string{"-t", "-i", "-f", "me@x.test"}, strings.NewReader(in), &stderr, getenv)
	require.Equal(t, exOK, code, stderr.String())

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, "me@x.test", rec.from)
	assert.Equal(t, []string{"a@x.test", "b@x.test"}, rec.rcpts)
	s := string(rec.data)
	assert.Contains(t, s, "Subject: piped\r\n", "bare LF became CRLF on the wire")
	assert.Contains(t, s, "\r\n.leading dot\r\nbody\r\n", "dot-stuffing is undone by the server")
	assert.NotContains(t, s, "Bcc")
}

func TestRunUnknownRecipient(t *testing.T) {
	_, addr := startRecorder(t)
	env := map[string]string{"MAILBLOCKS_SMTP": addr, "MAILBLOCKS_TLS": "none"}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"-f", "me@x.test", "unknown@x.test"}, strings.NewReader("Subject: x\n\nbody\n"), &stderr, func(k string) string { return env[k] })
	assert.Equal(t, exNoUser, code)
	assert.Contains(t, stderr.String(), "unknown@x.test")
}

func TestRunNoServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	env := map[string]string{"MAILBLOCKS_SMTP": addr, "MAILBLOCKS_TLS": "none"}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"-f", "me@x.test", "a@x.test"}, strings.NewReader("Subject: x\n\nbody\n"), &stderr, func(k string) string { return env[k] })
	assert.Equal(t, exTempFail, code, "a server that is down is a temporary failure")
}

func TestRunUsage(t *testing.T) {
	var stderr bytes.Buffer
	getenv := func(string) string { return "" }
	assert.Equal(t, exUsage, run(context.Background(), []string{"-Z"}, strings.NewReader(""), &stderr, getenv))
	assert.Equal(t, exUsage, run(context.Background(), []string{"-f", "a@b"}, strings.NewReader("Subject: x\n\nb\n"), &stderr, getenv), "no recipients")
	assert.Equal(t, exConfig, run(context.Background(), []string{"a@b"}, strings.NewReader(""), &stderr, func(k string) string {
		if k == "MAILBLOCKS_TLS" {
			return "maybe"
		}
		return ""
	}))
}

// TestRunAcceptedThenQuitFails: once the server has answered 250 to the
// end of DATA the message is its responsibility; a QUIT that fails must
// not make the caller resubmit it (exit 75 would mean "try again").
func TestRunAcceptedThenQuitFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(conn)
		io.WriteString(conn, "220 scripted.test ESMTP\r\n")
		inData := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case inData && cmd == ".":
				inData = false
				io.WriteString(conn, "250 2.0.0 queued\r\n")
			case inData:
			case strings.HasPrefix(cmd, "EHLO"):
				io.WriteString(conn, "250 scripted.test\r\n")
			case cmd == "DATA":
				inData = true
				io.WriteString(conn, "354 go on\r\n")
			case cmd == "QUIT":
				return // hang up without an answer
			default:
				io.WriteString(conn, "250 2.0.0 ok\r\n")
			}
		}
	}()
	env := map[string]string{"MAILBLOCKS_SMTP": l.Addr().String(), "MAILBLOCKS_TLS": "none"}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"-f", "me@x.test", "a@x.test"}, strings.NewReader("Subject: x\n\nbody\n"), &stderr, func(k string) string { return env[k] })
	assert.Equal(t, exOK, code, stderr.String())
}
