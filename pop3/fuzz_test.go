package pop3

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line string
		want command
		err  error
	}{
		{"STAT", command{Name: "STAT"}, nil},
		{"list 1", command{Name: "LIST", Args: []string{"1"}, Rest: "1"}, nil},
		{"TOP 1  10", command{Name: "TOP", Args: []string{"1", "10"}, Rest: "1  10"}, nil},
		{"PASS secret with spaces ", command{Name: "PASS", Args: []string{"secret", "with", "spaces"}, Rest: "secret with spaces "}, nil},
		{"PASS pässwörd", command{Name: "PASS", Args: []string{"pässwörd"}, Rest: "pässwörd"}, nil},
		{"", command{}, errEmptyCommand},
		{" STAT", command{}, errBadCommand},
		{"ST\tAT", command{}, errBadCommand},
		{"STAT\x00", command{}, errBadCommand},
		{"STÄT", command{}, errBadCommand},
		{"ABCDEFGHI", command{}, errBadCommand},
	}
	for _, tt := range tests {
		got, err := parseCommand(tt.line)
		if err != tt.err {
			t.Errorf("parseCommand(%q) error = %v, want %v", tt.line, err, tt.err)
			continue
		}
		if tt.err == nil && (got.Name != tt.want.Name || got.Rest != tt.want.Rest || strings.Join(got.Args, "|") != strings.Join(tt.want.Args, "|")) {
			t.Errorf("parseCommand(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

// FuzzCommandParser feeds arbitrary input through the line reader and the
// command parser.
func FuzzCommandParser(f *testing.F) {
	for _, s := range []string{"STAT\r\n", "LIST 1\r\n", "TOP 1 10\r\nQUIT\r\n", "PASS a b c\r\n",
		"AUTH PLAIN AHUAcHc=\r\n", "\r\n", "USER " + strings.Repeat("x", 300) + "\r\nNOOP\n", "uidl\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		for {
			line, err := readLine(r, maxCommandLine)
			if err == errLineTooLong {
				continue
			}
			if err != nil {
				return
			}
			if len(line)+1 > maxCommandLine || strings.ContainsAny(line, "\n") {
				t.Fatalf("readLine returned %q", line)
			}
			cmd, err := parseCommand(line)
			if err != nil {
				continue
			}
			if cmd.Name == "" || len(cmd.Name) > 8 || cmd.Name != strings.ToUpper(cmd.Name) {
				t.Fatalf("bad name %q from %q", cmd.Name, line)
			}
			if !strings.EqualFold(line[:len(cmd.Name)], cmd.Name) {
				t.Fatalf("name %q is not the start of %q", cmd.Name, line)
			}
			if cmd.Rest != "" && line != line[:len(cmd.Name)]+" "+cmd.Rest {
				t.Fatalf("rest %q does not rebuild %q", cmd.Rest, line)
			}
			for _, a := range cmd.Args {
				if a == "" || strings.Contains(a, " ") {
					t.Fatalf("bad argument %q from %q", a, line)
				}
			}
		}
	})
}

// FuzzSession feeds whole client sessions through a server over
// net.Pipe. The session must end, leave no lock behind, answer in CRLF
// lines, and delete nothing unless the client said DELE.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"USER u\r\nPASS pw\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nQUIT\r\n",
		"USER u\r\nPASS pw\r\nDELE 2\r\nQUIT\r\n",
		"CAPA\r\nAUTH PLAIN\r\nAHUAcHc=\r\nLIST 2\r\nQUIT\r\n",
		"AUTH PLAIN AHUAcHc=\r\nRETR 9\r\nTOP 1 x\r\nNOOP\r\n",
		"APOP u d\r\nSTLS\r\nUSER\r\nPASS\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st := newTestStore(t)
		st.deliver(t, "u@example.org", msg1)
		st.deliver(t, "u@example.org", msg2)
		opts := testOptions()
		opts.Timeout = 10 * time.Second
		srv := NewServer(st, opts)
		defer srv.Close()
		client, server := net.Pipe()
		defer client.Close()
		client.SetDeadline(time.Now().Add(ioTimeout))
		if !srv.serveConn(server) {
			t.Fatal("server refused the connection")
		}
		go func() {
			// End any SASL exchange and the session after the input.
			client.Write(data)
			client.Write([]byte("\r\n*\r\nQUIT\r\n"))
		}()
		out, err := io.ReadAll(client)
		if err != nil {
			t.Fatalf("reading the session: %v (after %q)", err, out)
		}
		if !bytes.HasPrefix(out, []byte("+OK ")) || !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("bad session output %q", out)
		}
		if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("bare LF in output %q", out)
		}
		srv.Close()
		srv.mu.Lock()
		locks := len(srv.locked)
		srv.mu.Unlock()
		if locks != 0 {
			t.Fatalf("%d locks left", locks)
		}
		if n := len(st.inbox(t, "u@example.org")); n != 2 && !bytes.Contains(bytes.ToUpper(data), []byte("DELE")) {
			t.Fatalf("%d messages left without DELE", n)
		}
	})
}

// TestSessionEndsOnShutdown: a session blocked on input before login
// ends when the server shuts down.
func TestSessionEndsOnShutdown(t *testing.T) {
	srv := NewServer(newTestStore(t), testOptions())
	client, server := net.Pipe()
	defer client.Close()
	client.SetDeadline(time.Now().Add(ioTimeout))
	srv.serveConn(server)
	r := bufio.NewReader(client)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("greeting %q, %v", line, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The session has not logged in: Shutdown closes it at once (and
	// may or may not see it end before noticing ctx).
	if err := srv.Shutdown(ctx); err != nil && err != context.Canceled {
		t.Fatalf("Shutdown = %v", err)
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("session still open")
	}
}

// FuzzClient feeds arbitrary server output to the client through a fixed
// sequence of calls: it must neither panic nor hang.
func FuzzClient(f *testing.F) {
	for _, s := range []string{
		"+OK hi\r\n+OK\r\nTOP\r\nSASL PLAIN\r\n.\r\n+OK\r\n+OK\r\n+OK 2 10\r\n+OK\r\n1 5\r\n2 5\r\n.\r\n" +
			"+OK\r\n1 a\r\n2 b\r\n.\r\n+OK\r\n..x\r\nbody\r\n.\r\n+OK\r\nh\r\n.\r\n+ \r\n+OK\r\n+OK bye\r\n",
		"-ERR [IN-USE] busy\r\n",
		"+OK\r\n-ERR [SYS/TEMP\r\n-ERR\r\n+OK x y\r\n+OK\r\n\r\n.\r\n",
		"+OK\r\n+OK\r\n.\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n.x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			go io.Copy(io.Discard, server)
			server.Write(data)
			server.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		c, err := NewClient(ctx, client, "localhost", ClientOptions{})
		if err != nil {
			return
		}
		c.Capabilities(ctx)
		c.Login(ctx, "u", "pw")
		c.Stat(ctx)
		c.List(ctx)
		c.UIDL(ctx)
		if rc, err := c.Retrieve(ctx, 1); err == nil {
			io.ReadAll(rc)
		}
		if rc, err := c.Top(ctx, 1, 0); err == nil {
			rc.Close()
		}
		c.Auth(ctx, plainSASL{})
		c.Noop(ctx)
		c.Quit(ctx)
	})
}

// plainSASL is a minimal sasl.Client for FuzzClient.
type plainSASL struct{}

func (plainSASL) Start() (string, []byte, error) { return "PLAIN", nil, nil }
func (plainSASL) Next(c []byte) ([]byte, error)  { return []byte("\x00u\x00pw"), nil }
