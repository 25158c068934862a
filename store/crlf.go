package store

import (
	"bytes"
	"io"
)

// CRLFReader returns a reader of r with every bare LF (an LF not preceded
// by CR) turned into CRLF, the line ending that IMAP (RFC 3501 2.2) and
// RFC 5322 2.3 require. CRLF pairs and lone CRs are left as they are. It
// streams: memory use does not depend on the message size (a buffer of at
// most 32 KiB, sized by the reads made on it).
//
// It works a buffer at a time, not a byte at a time: every message
// delivered, appended or fetched goes through it.
func CRLFReader(r io.Reader) io.Reader {
	return &crlfReader{r: r}
}

// CRLFReaderSize is CRLFReader with a buffer sized for an input of about
// size bytes (negative: unknown, the same as CRLFReader), so that reading
// many small messages (an IMAP FETCH or SEARCH over thousands of them)
// does not allocate 32 KiB for each.
func CRLFReaderSize(r io.Reader, size int64) io.Reader {
	c := &crlfReader{r: r}
	if size >= 0 {
		c.sized = true
		c.back = make([]byte, min(max(size+1, minCRLFBuffer), maxCRLFBuffer))
	}
	return c
}

// Bounds of a crlfReader's buffer.
const (
	minCRLFBuffer = 512
	maxCRLFBuffer = 32 * 1024
)

type crlfReader struct {
	r    io.Reader
	back []byte // storage of buf, allocated by the first Read if nil
	buf  []byte // unread input, a window of back
	last byte   // the last input byte handed out
	owe  bool   // the CR of a bare LF went out; the LF (buf[0]) is owed
	err  error  // from r, returned once buf is drained
	// sized: back was sized by CRLFReaderSize and does not grow.
	sized bool
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.buf) == 0 {
			if n > 0 || c.err != nil {
				// Return what we have rather than block on the source.
				break
			}
			if len(c.back) < min(len(p), maxCRLFBuffer) && !c.sized || c.back == nil {
				// Small reads get a small buffer; it grows with the
				// reads (bytes.Buffer.ReadFrom starts at 512 bytes).
				c.back = make([]byte, min(max(len(p), 4096), maxCRLFBuffer))
			}
			m, err := c.r.Read(c.back)
			c.buf, c.err = c.back[:m], err
			if m == 0 && err == nil {
				return 0, nil
			}
			continue
		}
		if c.owe {
			p[n] = '\n'
			n++
			c.buf, c.last, c.owe = c.buf[1:], '\n', false
			continue
		}
		// Find the next bare LF, looking no further than fits in p (with
		// tiny reads, rescanning a whole buffer each time would be
		// quadratic). Everything before it is copied as it is.
		win := c.buf[:min(len(c.buf), len(p)-n)]
		i := 0
		for {
			j := bytes.IndexByte(win[i:], '\n')
			if j < 0 {
				i = len(win)
				break
			}
			i += j
			if i == 0 && c.last != '\r' || i > 0 && win[i-1] != '\r' {
				break
			}
			i++
		}
		if i > 0 {
			copy(p[n:], win[:i])
			n += i
			c.last = win[i-1]
			c.buf = c.buf[i:]
		}
		if i == len(win) {
			// p is full, or buf is drained: go round.
			continue
		}
		// buf[0] is a bare LF and p has room for at least one byte.
		if n+2 <= len(p) {
			p[n], p[n+1] = '\r', '\n'
			n += 2
			c.buf, c.last = c.buf[1:], '\n'
			continue
		}
		p[n] = '\r'
		n++
		c.owe = true
	}
	if n == 0 && len(c.buf) == 0 && c.err != nil {
		return 0, c.err
	}
	return n, nil
}
