package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// ErrProtocol is wrapped by the client's errors for replies that do not
// follow the protocol.
var ErrProtocol = errors.New("pop3: protocol error")

// maxResponseLine bounds a server's response line and listing lines in
// the client. RFC 2449 section 4 says 512 octets; be lenient.
const maxResponseLine = 64 * 1024

// Error is a -ERR reply received by the Client.
type Error struct {
	// Command is the keyword of the command that failed ("PASS", "RETR").
	Command string
	// Code is the RFC 2449 response code without brackets ("IN-USE",
	// "AUTH", "SYS/TEMP"), or "".
	Code string
	// Text is the rest of the reply line.
	Text string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("pop3: %s: -ERR [%s] %s", e.Command, e.Code, e.Text)
	}
	return fmt.Sprintf("pop3: %s: -ERR %s", e.Command, e.Text)
}

// Temporary reports whether the server said the failure is transient:
// the maildrop is in use (RFC 2449 IN-USE, RFC 3206 SYS/TEMP).
func (e *Error) Temporary() bool {
	return e.Code == "IN-USE" || e.Code == "SYS/TEMP" || strings.HasPrefix(e.Code, "SYS/TEMP/")
}

// Dialer makes network connections; *net.Dialer implements it.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// ClientOptions configure a Client. The zero value works.
type ClientOptions struct {
	// Dialer is used by Dial and DialTLS. Default: a net.Dialer.
	Dialer Dialer
	// TLSConfig is used by DialTLS and by StartTLS with a nil config.
	// Default: a config with ServerName set to the host of addr.
	TLSConfig *tls.Config
	// Timeout bounds each command and each read of a message when the
	// context has no deadline. Default 5 minutes.
	Timeout time.Duration
}

// Client is a POP3 client connection. It is not safe for concurrent use;
// commands are sent one after the other.
type Client struct {
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	opts     ClientOptions
	host     string
	greeting string
	isTLS    bool
	err      error      // sticky: the connection is unusable
	open     *dotReader // the message being read, if any
}

// MessageInfo is one scan listing line of LIST.
type MessageInfo struct {
	Number int
	Size   int64
}

// Dial connects to a POP3 server at addr ("host:port") and reads its
// greeting.
func Dial(ctx context.Context, addr string, opts ClientOptions) (*Client, error) {
	conn, err := dialer(opts).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: dial %s: %w", addr, err)
	}
	c, err := NewClient(ctx, conn, hostOf(addr), opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// DialTLS connects to a POP3 server with implicit TLS ("POP3S", port 995,
// RFC 8314) and reads its greeting.
func DialTLS(ctx context.Context, addr string, opts ClientOptions) (*Client, error) {
	conn, err := dialer(opts).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: dial %s: %w", addr, err)
	}
	tc := tls.Client(conn, tlsConfig(opts.TLSConfig, hostOf(addr)))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pop3: TLS handshake with %s: %w", addr, err)
	}
	c, err := NewClient(ctx, tc, hostOf(addr), opts)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return c, nil
}

// NewClient starts a client on an established connection (plain, or a
// *tls.Conn for implicit TLS) and reads the greeting. host is the server
// name for StartTLS's certificate check.
func NewClient(ctx context.Context, conn net.Conn, host string, opts ClientOptions) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	c := &Client{opts: opts, host: host}
	c.setConn(conn)
	stop := c.watch(ctx)
	defer stop()
	line, err := c.response("greeting")
	if err != nil {
		return nil, err
	}
	c.greeting = line
	return c, nil
}

func dialer(opts ClientOptions) Dialer {
	if opts.Dialer != nil {
		return opts.Dialer
	}
	return &net.Dialer{}
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

func tlsConfig(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		return &tls.Config{ServerName: host}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	return cfg
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.r = bufio.NewReaderSize(conn, 32*1024)
	c.w = bufio.NewWriter(conn)
	_, c.isTLS = conn.(*tls.Conn)
}

// watch bounds the I/O that follows by ctx: its deadline (or
// Options.Timeout) and its cancellation. Call the returned func when done.
func (c *Client) watch(ctx context.Context) (stop func()) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.opts.Timeout)
	}
	c.conn.SetDeadline(deadline)
	stopAfter := context.AfterFunc(ctx, func() {
		// Unblock the pending read or write at once.
		c.conn.SetDeadline(time.Unix(1, 0))
	})
	return func() { stopAfter() }
}

// Greeting returns the server's greeting line after "+OK ".
func (c *Client) Greeting() string { return c.greeting }

// IsTLS reports whether the connection is protected by TLS.
func (c *Client) IsTLS() bool { return c.isTLS }

// Close closes the connection without QUIT: the server does not enter
// the UPDATE state and deletes nothing.
func (c *Client) Close() error { return c.conn.Close() }

// cmd sends a command and reads its single-line response. It finishes
// any message still being read first.
func (c *Client) cmd(ctx context.Context, name, args string) (string, error) {
	if err := c.begin(); err != nil {
		return "", err
	}
	stop := c.watch(ctx)
	defer stop()
	if err := c.send(name, args); err != nil {
		return "", err
	}
	return c.response(name)
}

// begin readies the connection for a command: it fails if the
// connection is unusable and finishes reading an open message.
func (c *Client) begin() error {
	if c.err != nil {
		return c.err
	}
	if c.open != nil {
		c.open.Close()
	}
	return c.err
}

func (c *Client) send(name, args string) error {
	line := name
	if args != "" {
		line += " " + args
	}
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("pop3: %s: CR or LF in argument", name)
	}
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return c.fail(fmt.Errorf("pop3: %s: %w", name, err))
	}
	return nil
}

// fail records a connection-level error: the client is unusable after.
func (c *Client) fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	return err
}

// response reads one response line: the text after "+OK" or an *Error.
func (c *Client) response(name string) (string, error) {
	line, err := readLine(c.r, maxResponseLine)
	if err != nil {
		return "", c.fail(fmt.Errorf("pop3: %s: %w", name, err))
	}
	return c.parseResponse(name, line)
}

func (c *Client) parseResponse(name, line string) (string, error) {
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return strings.TrimPrefix(strings.TrimPrefix(line, "+OK"), " "), nil
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		text := strings.TrimPrefix(strings.TrimPrefix(line, "-ERR"), " ")
		e := &Error{Command: name, Text: text}
		// RFC 2449 section 8: "[" code "]" right after "-ERR ".
		if strings.HasPrefix(text, "[") {
			if i := strings.IndexByte(text, ']'); i > 0 {
				e.Code, e.Text = text[1:i], strings.TrimPrefix(text[i+1:], " ")
			}
		}
		return "", e
	}
	return "", c.fail(fmt.Errorf("%w: %s: unexpected reply %q", ErrProtocol, name, line))
}

// lines reads the rest of a multi-line response, unstuffed, line by line.
func (c *Client) lines(name string, fn func(line string) error) error {
	for {
		line, err := readLine(c.r, maxResponseLine)
		if err != nil {
			return c.fail(fmt.Errorf("pop3: %s: %w", name, err))
		}
		if line == "." {
			return nil
		}
		line = strings.TrimPrefix(line, ".")
		if err := fn(line); err != nil {
			// Keep the connection in step before reporting.
			for {
				l, rerr := readLine(c.r, maxResponseLine)
				if rerr != nil {
					return c.fail(fmt.Errorf("pop3: %s: %w", name, rerr))
				}
				if l == "." {
					return err
				}
			}
		}
	}
}

// Capabilities sends CAPA (RFC 2449) and returns the capabilities by
// upper-case name, each with its arguments (e.g. "SASL": ["PLAIN"]).
func (c *Client) Capabilities(ctx context.Context) (map[string][]string, error) {
	if _, err := c.cmd(ctx, "CAPA", ""); err != nil {
		return nil, err
	}
	stop := c.watch(ctx)
	defer stop()
	caps := make(map[string][]string)
	err := c.lines("CAPA", func(line string) error {
		f := strings.Fields(line)
		if len(f) > 0 {
			caps[strings.ToUpper(f[0])] = f[1:]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return caps, nil
}

// StartTLS sends STLS (RFC 2595) and upgrades the connection. A nil cfg
// means ClientOptions.TLSConfig, or one that checks the server name.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if c.isTLS {
		return errors.New("pop3: STLS: TLS already active")
	}
	if cfg == nil {
		cfg = c.opts.TLSConfig
	}
	if _, err := c.cmd(ctx, "STLS", ""); err != nil {
		return err
	}
	if c.r.Buffered() > 0 {
		// Data sent in clear text after +OK could be an injection.
		return c.fail(fmt.Errorf("%w: STLS: data after +OK", ErrProtocol))
	}
	tc := tls.Client(c.conn, tlsConfig(cfg, c.host))
	stop := c.watch(ctx)
	defer stop()
	if err := tc.HandshakeContext(ctx); err != nil {
		return c.fail(fmt.Errorf("pop3: STLS handshake: %w", err))
	}
	c.setConn(tc)
	return nil
}

// Login authenticates with USER and PASS (RFC 1939 section 7).
func (c *Client) Login(ctx context.Context, username, password string) error {
	if _, err := c.cmd(ctx, "USER", username); err != nil {
		return err
	}
	_, err := c.cmd(ctx, "PASS", password)
	return err
}

// Auth authenticates with SASL (RFC 5034), e.g. with
// sasl.NewPlainClient("", user, password). The initial response is sent
// with the command when the line stays within 255 octets.
func (c *Client) Auth(ctx context.Context, a sasl.Client) error {
	mech, ir, err := a.Start()
	if err != nil {
		return fmt.Errorf("pop3: AUTH: %w", err)
	}
	args := mech
	sendIR := false
	if ir != nil {
		enc := "="
		if len(ir) > 0 {
			enc = base64.StdEncoding.EncodeToString(ir)
		}
		// RFC 5034 section 4: the command line must fit in 255 octets.
		if len("AUTH ")+len(mech)+1+len(enc)+2 <= maxCommandLine {
			args += " " + enc
			sendIR = true
		}
	}
	if err := c.begin(); err != nil {
		return err
	}
	stop := c.watch(ctx)
	defer stop()
	if err := c.send("AUTH", args); err != nil {
		return err
	}
	pending := ir != nil && !sendIR
	for {
		line, err := readLine(c.r, maxResponseLine)
		if err != nil {
			return c.fail(fmt.Errorf("pop3: AUTH: %w", err))
		}
		if !strings.HasPrefix(line, "+ ") && line != "+" {
			_, err := c.parseResponse("AUTH", line)
			return err
		}
		var resp []byte
		if pending {
			resp, pending = ir, false
		} else {
			chal, derr := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimPrefix(line, "+"), " "))
			if derr != nil {
				c.send("*", "")
				return c.fail(fmt.Errorf("%w: AUTH: bad challenge", ErrProtocol))
			}
			resp, err = a.Next(chal)
			if err != nil {
				if serr := c.send("*", ""); serr != nil {
					return serr
				}
				c.response("AUTH")
				return fmt.Errorf("pop3: AUTH: %w", err)
			}
		}
		if err := c.send(base64.StdEncoding.EncodeToString(resp), ""); err != nil {
			return err
		}
	}
}

// Stat returns the number of messages and their total size (STAT).
func (c *Client) Stat(ctx context.Context) (count int, size int64, err error) {
	line, err := c.cmd(ctx, "STAT", "")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("%w: STAT: %q", ErrProtocol, line)
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: STAT: %q", ErrProtocol, line)
	}
	return count, size, nil
}

// List returns the scan listing of every message not marked deleted
// (LIST).
func (c *Client) List(ctx context.Context) ([]MessageInfo, error) {
	if _, err := c.cmd(ctx, "LIST", ""); err != nil {
		return nil, err
	}
	stop := c.watch(ctx)
	defer stop()
	var list []MessageInfo
	err := c.lines("LIST", func(line string) error {
		f := strings.Fields(line)
		if len(f) < 2 {
			return fmt.Errorf("%w: LIST: %q", ErrProtocol, line)
		}
		n, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%w: LIST: %q", ErrProtocol, line)
		}
		list = append(list, MessageInfo{Number: n, Size: size})
		return nil
	})
	return list, err
}

// UIDL returns the unique-id of every message not marked deleted, by
// message number (UIDL).
func (c *Client) UIDL(ctx context.Context) (map[int]string, error) {
	if _, err := c.cmd(ctx, "UIDL", ""); err != nil {
		return nil, err
	}
	stop := c.watch(ctx)
	defer stop()
	ids := make(map[int]string)
	err := c.lines("UIDL", func(line string) error {
		f := strings.Fields(line)
		if len(f) < 2 {
			return fmt.Errorf("%w: UIDL: %q", ErrProtocol, line)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return fmt.Errorf("%w: UIDL: %q", ErrProtocol, line)
		}
		ids[n] = f[1]
		return nil
	})
	return ids, err
}

// Retrieve sends RETR and returns the message as a stream: the exact
// octets the server sent (CRLF line endings), dot-unstuffed, ending before
// the terminating ".". The stream must be read or closed before the next
// command (the next command closes it, reading what is left). ctx bounds
// the reading of the stream too.
func (c *Client) Retrieve(ctx context.Context, n int) (io.ReadCloser, error) {
	return c.message(ctx, "RETR", strconv.Itoa(n))
}

// Top sends TOP: the header of message n and the first lines of its body,
// as a stream like Retrieve's.
func (c *Client) Top(ctx context.Context, n, lines int) (io.ReadCloser, error) {
	return c.message(ctx, "TOP", strconv.Itoa(n)+" "+strconv.Itoa(lines))
}

func (c *Client) message(ctx context.Context, name, args string) (io.ReadCloser, error) {
	if _, err := c.cmd(ctx, name, args); err != nil {
		return nil, err
	}
	d := &dotReader{c: c, name: name, bol: true, stop: c.watch(ctx)}
	c.open = d
	return d, nil
}

// Delete marks message n deleted (DELE); the server removes it at Quit.
func (c *Client) Delete(ctx context.Context, n int) error {
	_, err := c.cmd(ctx, "DELE", strconv.Itoa(n))
	return err
}

// Noop sends NOOP.
func (c *Client) Noop(ctx context.Context) error {
	_, err := c.cmd(ctx, "NOOP", "")
	return err
}

// Reset unmarks every message marked deleted (RSET).
func (c *Client) Reset(ctx context.Context) error {
	_, err := c.cmd(ctx, "RSET", "")
	return err
}

// Quit sends QUIT, which makes the server remove the messages marked
// deleted, and closes the connection. An error means the deletions may
// not have happened.
func (c *Client) Quit(ctx context.Context) error {
	defer c.conn.Close()
	_, err := c.cmd(ctx, "QUIT", "")
	return err
}

// dotReader reads a multi-line response body, removing the byte-stuffing
// (RFC 1939 section 3) and stopping at the terminating line.
type dotReader struct {
	c       *Client
	name    string
	pending []byte
	bol     bool
	done    bool
	err     error
	stop    func()
}

func (d *dotReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		line, err := d.c.r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			d.err = d.c.fail(fmt.Errorf("pop3: %s: %w", d.name, err))
			d.finish()
			return 0, d.err
		}
		if d.bol {
			if string(line) == ".\r\n" || string(line) == ".\n" {
				d.done = true
				d.finish()
				return 0, io.EOF
			}
			if line[0] == '.' {
				line = line[1:]
			}
		}
		d.bol = err == nil
		d.pending = line
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

func (d *dotReader) finish() {
	if d.stop != nil {
		d.stop()
		d.stop = nil
	}
	if d.c.open == d {
		d.c.open = nil
	}
}

// Close reads and discards the rest of the message, so that the
// connection is ready for the next command.
func (d *dotReader) Close() error {
	if d.done || d.err != nil {
		d.finish()
		return nil
	}
	_, err := io.Copy(io.Discard, d)
	d.finish()
	return err
}
