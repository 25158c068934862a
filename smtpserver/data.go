package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/mailblocks/mailblocks"
)

// Data receives a message (DATA or BDAT) and hands it to the handler.
func (s *session) Data(r io.Reader) error { return s.data(r, nil) }

// LMTPData is Data with one status per recipient (RFC 2033 4.2).
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	return s.data(r, status)
}

func (s *session) data(r io.Reader, status smtp.StatusCollector) error {
	// go-smtp runs a BDAT transfer in a goroutine of its own that it
	// does not wait for: the connection may end while the handler
	// still runs. serveConn waits for it (see conn.waitData).
	if !s.c.beginData() {
		return smtp.ErrDataReset // the connection is gone: nobody reads this
	}
	defer s.c.dataWG.Done()
	env, err := s.deliver(r, status)
	if err != nil {
		return s.dataErr(err, env)
	}
	return nil
}

// dataErr turns the failure of a message transfer into its reply. A BDAT
// transaction abandoned by go-smtp (RSET between chunks, RFC 3030 4.1, or
// a chunk over MaxMessageBytes, which go-smtp has already answered 552)
// is not a refusal: nobody reads this reply, and it must neither count
// towards MaxErrors nor close the connection as a 421 would.
func (s *session) dataErr(err error, env *mailblocks.Envelope) error {
	if errors.Is(err, smtp.ErrDataReset) {
		s.c.log.Debug("BDAT transaction reset")
		return err
	}
	return s.c.smtpErr("data", err, env)
}

func (s *session) deliver(r io.Reader, status smtp.StatusCollector) (*mailblocks.Envelope, error) {
	cfg := s.cfg()
	c := s.c
	env := s.getEnv()
	if env == nil || len(env.Recipients) == 0 { // go-smtp prevents it
		io.Copy(io.Discard, r)
		return env, &mailblocks.Error{Code: 503, Enhanced: mailblocks.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}
	c.startData()
	env.Received = cfg.Now()
	// The spool is per transfer, not per session: after RSET a BDAT
	// transfer may still run while the next one starts.
	var spool *os.File
	defer func() {
		if spool != nil {
			spool.Close()
		}
	}()

	g := &guard{r: r, normalize: cfg.BareLF == BareLFNormalize, connEOF: &c.readEOF}
	body, err := s.prepare(env, g, &spool)
	if err != nil {
		io.Copy(io.Discard, g) // leave the stream at its end; errors are sticky
		return env, readError(g.err, err)
	}

	ctx := c.ctx
	h := cfg.Handler
	if h == nil {
		h = refuseHandler{}
	}
	var errs []error
	lh, perRcpt := h.(LMTPHandler)
	if status != nil && perRcpt {
		errs = lh.HandleLMTP(ctx, env, body)
	} else {
		err = h.Handle(ctx, env, body)
	}
	if g.err == nil && !g.eof {
		// The handler returned without reading everything: check the rest,
		// so that a refusal is still a refusal.
		io.Copy(io.Discard, g)
	}
	if g.err != nil {
		if err == nil && (status == nil || !perRcpt) {
			c.log.Error("handler accepted an incomplete message", "id", env.ID)
		}
		return env, readError(g.err, g.err)
	}
	if status != nil && perRcpt {
		accepted := false
		for i, rcpt := range env.Recipients {
			var e error = mailblocks.ErrTemporary
			if i < len(errs) {
				e = errs[i]
			}
			if e != nil {
				status.SetStatus(rcpt.Address, c.reply("data", "", e, env, false))
			} else {
				accepted = true
				status.SetStatus(rcpt.Address, nil)
			}
		}
		if accepted {
			s.accepted(env, g.n)
		}
		return env, nil
	}
	if err != nil {
		return env, err
	}
	s.accepted(env, g.n)
	return env, nil
}

func (s *session) accepted(env *mailblocks.Envelope, size int64) {
	c := s.c
	c.log.Info("accepted", "id", env.ID, "from", env.From, "rcpts", len(env.Recipients), "size", size)
	c.srv.event(Event{Kind: EventAccept, Session: c.id, Mode: c.mode, RemoteAddr: c.RemoteAddr(), Stage: "data", Envelope: env})
}

// refuseHandler is the default Handler: without a handler nothing can be
// made durable.
type refuseHandler struct{}

func (refuseHandler) Handle(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	io.Copy(io.Discard, body)
	return mailblocks.ErrTemporary.WithMessage("No handler configured")
}

var (
	errLineTooLong = &mailblocks.Error{Code: 500, Enhanced: mailblocks.EnhancedCode{5, 5, 2}, Message: "Line too long"}
	errConnLost    = &mailblocks.Error{Code: 421, Enhanced: mailblocks.EnhancedCode{4, 4, 2}, Message: "Connection lost during data transfer"}
)

// readError maps the failure of the message stream (readErr, may be nil)
// or of preparing it (err) to a reply.
func readError(readErr, err error) error {
	if readErr == nil {
		return err
	}
	var me *mailblocks.Error
	var se *smtp.SMTPError
	var ne net.Error
	switch {
	case errors.As(readErr, &me):
		return me
	case errors.Is(readErr, smtp.ErrDataReset):
		return readErr // see dataErr
	case errors.Is(readErr, smtp.ErrTooLongLine):
		// go-smtp ends the session after a too long line; say it once.
		return errLineTooLong
	case errors.As(readErr, &se) && se.Code == 552:
		// go-smtp's ErrDataTooLarge: MaxMessageBytes reached.
		return mailblocks.ErrMessageTooBig
	case errors.Is(readErr, os.ErrDeadlineExceeded) || errors.As(readErr, &ne) && ne.Timeout():
		return ErrTimeout
	}
	return errConnLost
}

// guard checks the message stream while it flows: it stops at a NUL byte
// and at a bare LF (or turns the bare LF into CRLF), counts the bytes and
// remembers the first error, which decides the reply whatever the handler
// makes of it.
type guard struct {
	r         io.Reader
	normalize bool
	// connEOF, when set, tells whether the client had closed its side
	// when the stream ended: then the message is incomplete, whatever the
	// stream says. go-smtp copies a BDAT chunk with io.Copy from a
	// LimitReader, which takes the connection's EOF for the end of the
	// chunk, and closes the pipe normally after a LAST chunk cut short.
	// (A DATA stream cut short already ends in io.ErrUnexpectedEOF.)
	connEOF *atomic.Bool
	prevCR  bool
	err     error
	eof     bool
	n       int64
	pending []byte // normalised output not yet returned
	pendBuf []byte // pending's storage, reused once it is drained
	buf     []byte
}

func (g *guard) Read(p []byte) (int, error) {
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	if g.err != nil {
		return 0, g.err
	}
	if g.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	src := p
	if g.normalize {
		// Read into a side buffer: the output may grow.
		if cap(g.buf) < len(p) {
			g.buf = make([]byte, len(p))
		}
		src = g.buf[:len(p)]
		g.pending = g.pendBuf[:0] // drained: the first branch returned otherwise
	}
	n, err := g.r.Read(src)
	if err != nil && err != io.EOF {
		g.err = err
	}
	if err == io.EOF {
		if g.connEOF != nil && g.connEOF.Load() {
			g.err = errConnLost
		} else {
			g.eof = true
		}
	}
	out := p[:0]
	prevCR := g.prevCR
	for i := 0; i < n; i++ {
		b := src[i]
		switch {
		case b == 0:
			g.err = ErrNULByte
			return 0, g.err
		case b == '\n' && !prevCR:
			if !g.normalize {
				g.err = ErrBareLF
				return 0, g.err
			}
			g.pending = append(g.pending, '\r')
		}
		if g.normalize {
			g.pending = append(g.pending, b)
		}
		prevCR = b == '\r'
	}
	g.prevCR = prevCR
	g.n += int64(n)
	if g.normalize {
		g.pendBuf = g.pending[:0]
		m := copy(p, g.pending)
		g.pending = g.pending[m:]
		out = p[:m]
		if len(g.pending) > 0 {
			return m, nil
		}
	} else {
		out = p[:n]
	}
	if g.err != nil {
		return len(out), nil // the error comes with the next Read
	}
	if g.eof {
		return len(out), io.EOF
	}
	return len(out), nil
}

// prepare reads the header of the message, applies loop detection, the data
// checkers and the submission fixes, and returns the message to give the
// handler: added fields, Received, the client's header, the rest streamed.
// With BodyCheckers the message is spooled to a file set in *spool.
func (s *session) prepare(env *mailblocks.Envelope, g *guard, spool **os.File) (io.Reader, error) {
	cfg := s.cfg()
	br := bufio.NewReaderSize(g, 4096)
	raw, hdr, err := readHeader(br, cfg.MaxHeaderBytes)
	if err != nil {
		return nil, err
	}
	// RFC 5321 6.3: a count of Received fields is the loop detector.
	if cfg.MaxHops > 0 && len(hdr.Values("Received")) >= cfg.MaxHops {
		return nil, mailblocks.ErrLoopDetected
	}
	var top bytes.Buffer
	for _, ck := range cfg.Checkers {
		dc, ok := ck.(DataChecker)
		if !ok {
			continue
		}
		add, err := dc.CheckData(s.c.ctx, env, hdr)
		if err != nil {
			return nil, checkerError{ck.Name(), err}
		}
		if err := writeFields(&top, add); err != nil {
			return nil, err
		}
	}
	var fix []byte
	if s.c.mode.submission() {
		// RFC 6409 8.2 and 8.3: the MSA may add a missing Date and
		// Message-ID.
		if !hdr.Has("Message-Id") {
			fix = fmt.Appendf(fix, "Message-ID: <%s@%s>\r\n", env.ID, cfg.Hostname)
		}
		if !hdr.Has("Date") {
			fix = fmt.Appendf(fix, "Date: %s\r\n", env.Received.Format(time.RFC1123Z))
		}
	}

	var bodyCheckers []BodyChecker
	for _, ck := range cfg.Checkers {
		if bc, ok := ck.(BodyChecker); ok {
			bodyCheckers = append(bodyCheckers, bc)
		}
	}
	if len(bodyCheckers) == 0 {
		top.WriteString(s.received(env))
		return io.MultiReader(&top, bytes.NewReader(raw.header), bytes.NewReader(fix), bytes.NewReader(raw.rest), br), nil
	}

	// A body check needs the whole message before the handler may start:
	// spool it to an unlinked temporary file, bounded by MaxMessageBytes.
	f, err := os.CreateTemp(cfg.TempDir, "smtpserver-spool-*")
	if err != nil {
		return nil, fmt.Errorf("smtpserver: spool: %w", err)
	}
	os.Remove(f.Name()) // nothing is left behind, even after a crash
	*spool = f          // closed by the caller
	n, err := io.Copy(f, io.MultiReader(bytes.NewReader(raw.header), bytes.NewReader(raw.rest), br))
	if err != nil {
		return nil, err
	}
	for _, bc := range bodyCheckers {
		add, err := bc.CheckBody(s.c.ctx, env, hdr, io.NewSectionReader(f, 0, n))
		if err != nil {
			return nil, checkerError{bc.Name(), err}
		}
		if err := writeFields(&top, add); err != nil {
			return nil, err
		}
	}
	top.WriteString(s.received(env))
	h := int64(len(raw.header))
	return io.MultiReader(&top, io.NewSectionReader(f, 0, h), bytes.NewReader(fix), io.NewSectionReader(f, h, n-h)), nil
}

// writeFields writes header fields without the blank line that ends a
// header.
func writeFields(w *bytes.Buffer, h textproto.Header) error {
	if h.Len() == 0 {
		return nil
	}
	if err := textproto.WriteHeader(w, h); err != nil {
		return err
	}
	w.Truncate(w.Len() - 2)
	return nil
}

// rawHeader is the client's header block as read: header holds the fields,
// rest the separator line (or the first body line when the message has no
// separator), to be followed by the remaining stream.
type rawHeader struct {
	header []byte
	rest   []byte
}

// readHeader reads the header block (RFC 5322 2.2) from br, at most max
// bytes (0: no limit). It stops at the empty line, at EOF, or at the first
// line that is neither a field nor a continuation (then the message has no
// separator and that line starts the body).
func readHeader(br *bufio.Reader, max int) (rawHeader, textproto.Header, error) {
	var raw rawHeader
	for {
		line, err := readLine(br, max-len(raw.header), max > 0)
		if err != nil && err != io.EOF {
			return raw, textproto.Header{}, err
		}
		if len(line) == 0 {
			break
		}
		switch {
		case bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")):
			raw.rest = line
		case (line[0] == ' ' || line[0] == '\t') && len(raw.header) > 0:
			raw.header = append(raw.header, line...)
		case isFieldLine(line):
			raw.header = append(raw.header, line...)
		default:
			raw.rest = line
		}
		if raw.rest != nil || err == io.EOF {
			break
		}
	}
	if n := len(raw.header); n > 0 && raw.header[n-1] != '\n' {
		// A header ending at EOF without a line ending.
		raw.header = append(raw.header, '\r', '\n')
	}
	hdr, err := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw.header), strings.NewReader("\r\n"))))
	if err != nil {
		// Our scan accepted it; the parser did not. Give the checkers an
		// empty header rather than refusing the message.
		hdr = textproto.Header{}
	}
	return raw, hdr, nil
}

// readLine reads one line including its LF, refusing to go past max bytes.
func readLine(br *bufio.Reader, max int, limited bool) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if limited && len(line) > max {
			return nil, ErrHeaderTooBig
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

// isFieldLine reports whether line starts with a field name and a colon
// (RFC 5322 2.2: printable ASCII except colon).
func isFieldLine(line []byte) bool {
	for i, b := range line {
		if b == ':' {
			return i > 0
		}
		if b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return false
}

// received formats the Received field (RFC 5321 4.4) with the RFC 3848 (and
// RFC 6531 4.3 for SMTPUTF8) protocol keyword.
func (s *session) received(env *mailblocks.Envelope) string {
	cfg := s.cfg()
	proto := "ESMTP"
	if s.c.mode == LMTP {
		proto = "LMTP"
	}
	if env.SMTPUTF8 {
		proto = "UTF8" + strings.TrimPrefix(proto, "E")
	}
	switch {
	case env.TLS != nil && env.AuthUser != "":
		proto += "SA"
	case env.TLS != nil:
		proto += "S"
	case env.AuthUser != "":
		proto += "A"
	}
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(sanitize(env.Helo, env.SMTPUTF8))
	b.WriteString(" (")
	b.WriteString(tcpInfo(env.RemoteAddr))
	b.WriteString(")\r\n")
	if env.TLS != nil {
		fmt.Fprintf(&b, "\t(using %s with cipher %s)\r\n",
			tlsVersion(env.TLS.Version), tlsCipher(env.TLS.CipherSuite))
	}
	fmt.Fprintf(&b, "\tby %s (mailblocks) with %s id %s", cfg.Hostname, proto, env.ID)
	// Like Postfix, name the recipient only when there is one, so that a
	// Bcc recipient's address is not shown to the others.
	if len(env.Recipients) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitize(env.Recipients[0].Address, env.SMTPUTF8))
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", env.Received.Format(time.RFC1123Z))
	return b.String()
}

// tcpInfo is the TCP-info of RFC 5321 4.4: an address literal.
func tcpInfo(a net.Addr) string {
	if a == nil {
		return "local"
	}
	ip := addrIP(a)
	switch {
	case !ip.IsValid():
		return sanitize(a.String(), false)
	case ip.Is4():
		return "unknown [" + ip.String() + "]"
	}
	return "unknown [IPv6:" + ip.String() + "]"
}

// sanitize keeps client-supplied text from breaking the header: no control
// characters, no parentheses or angle brackets, no non-ASCII unless the
// message is SMTPUTF8.
func sanitize(v string, utf8 bool) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c <= ' ' || c == 0x7f || c == '(' || c == ')' || c == '<' || c == '>' || c == ';' || c == '\\':
			b.WriteByte('?')
		case c >= 0x80 && !utf8:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}
