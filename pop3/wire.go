package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// maxCommandLine is the longest command line accepted, CRLF included
// (RFC 2449 section 4).
const maxCommandLine = 255

// maxSASLLine bounds a client's SASL response line. RFC 5034 section 4
// lifts the 255-octet limit for them; PLAIN needs little.
const maxSASLLine = 8192

var (
	errLineTooLong  = errors.New("pop3: line too long")
	errEmptyCommand = errors.New("pop3: empty command")
	errBadCommand   = errors.New("pop3: malformed command")
)

// command is one parsed client command line.
type command struct {
	// Name is the keyword in upper case.
	Name string
	// Args are the space-separated arguments.
	Args []string
	// Rest is everything after the keyword and its separating space,
	// unchanged: PASS takes it whole, because RFC 1939 section 7 lets a
	// password contain spaces.
	Rest string
}

// parseCommand parses a command line without its CRLF. RFC 1939 section
// 3: a case-insensitive keyword of three or four characters (extensions
// of RFC 2449 section 4 may be longer, we accept up to 8), then arguments
// separated by single spaces. Control characters are refused; octets
// above 0x7F are kept for UTF-8 passwords.
func parseCommand(line string) (command, error) {
	if line == "" {
		return command{}, errEmptyCommand
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 || c == 0x7f {
			return command{}, errBadCommand
		}
	}
	name, rest, _ := strings.Cut(line, " ")
	if name == "" || len(name) > 8 {
		return command{}, errBadCommand
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return command{}, errBadCommand
		}
	}
	return command{Name: strings.ToUpper(name), Args: strings.Fields(rest), Rest: rest}, nil
}

// readLine reads one line of at most limit octets (CRLF included) and
// returns it without its line ending. A longer line is consumed entirely
// and reported as errLineTooLong, so that the session can answer -ERR and
// go on with the next command.
func readLine(r *bufio.Reader, limit int) (string, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > limit {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && (len(buf) > 0 || tooLong) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		break
	}
	if tooLong {
		return "", errLineTooLong
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	return string(buf), nil
}

// dotWriter writes the body of a multi-line response (RFC 1939 section
// 3): every line ends in CRLF (a bare LF becomes CRLF), a line that
// begins with "." gets another "." in front, and Close ends the response
// with ".CRLF", after a CRLF if the data did not end with one.
type dotWriter struct {
	w   *bufio.Writer
	bol bool // at the beginning of a line
	cr  bool // the last octet written was CR
}

func newDotWriter(w *bufio.Writer) *dotWriter {
	return &dotWriter{w: w, bol: true}
}

func (d *dotWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if d.bol && p[0] == '.' {
			if err := d.w.WriteByte('.'); err != nil {
				return 0, err
			}
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if _, err := d.w.Write(p); err != nil {
				return 0, err
			}
			d.bol, d.cr = false, p[len(p)-1] == '\r'
			break
		}
		seg := p[:i]
		if _, err := d.w.Write(seg); err != nil {
			return 0, err
		}
		cr := d.cr
		if len(seg) > 0 {
			cr = seg[len(seg)-1] == '\r'
		}
		if !cr {
			d.w.WriteByte('\r')
		}
		if err := d.w.WriteByte('\n'); err != nil {
			return 0, err
		}
		d.bol, d.cr = true, false
		p = p[i+1:]
	}
	return total, nil
}

// Close terminates the multi-line response; it does not flush.
func (d *dotWriter) Close() error {
	if !d.bol {
		if !d.cr {
			d.w.WriteByte('\r')
		}
		d.w.WriteByte('\n')
	}
	_, err := d.w.WriteString(".\r\n")
	d.bol, d.cr = true, false
	return err
}

// errTopDone stops copying a message once TOP has what it needs.
var errTopDone = errors.New("pop3: top done")

// topWriter passes on the header of a message, the blank line that ends
// it and then at most limit lines of the body (RFC 1939 section 7, TOP),
// then fails with errTopDone so that the copy stops reading.
type topWriter struct {
	w        io.Writer
	limit    int
	inBody   bool
	lines    int
	nonBlank bool // the current line has an octet other than CR or LF
}

func (t *topWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if t.inBody && t.lines >= t.limit {
			return n, errTopDone
		}
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i+1]
		}
		if _, err := t.w.Write(seg); err != nil {
			return n, err
		}
		n += len(seg)
		p = p[len(seg):]
		if len(bytes.Trim(seg, "\r\n")) > 0 {
			t.nonBlank = true
		}
		if i < 0 {
			continue
		}
		if !t.inBody {
			if !t.nonBlank {
				t.inBody = true
			}
		} else {
			t.lines++
		}
		t.nonBlank = false
	}
	if t.inBody && t.lines >= t.limit {
		return n, errTopDone
	}
	return n, nil
}
