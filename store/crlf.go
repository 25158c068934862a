package store

import (
	"bytes"
	"io"
)

// CRLFReader returns a reader of r with every bare LF turned into CRLF,
// the line ending that IMAP (RFC 3501 2.2) and RFC 5322 require. CRLF
// pairs and lone CRs are left as they are. It streams: memory use does not
// depend on the message size.
func CRLFReader(r io.Reader) io.Reader {
	return &crlfReader{r: r}
}

type crlfReader struct {
	r       io.Reader
	prevCR  bool // the last byte returned was CR
	pending bool // an LF is owed after an inserted CR
	buf     []byte
	err     error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	if c.pending {
		p[0] = '\n'
		n = 1
		c.pending = false
		c.prevCR = false
	}
	for n < len(p) {
		if len(c.buf) == 0 {
			if c.err != nil {
				break
			}
			if n > 0 {
				// Return what we have rather than block on the source.
				break
			}
			if cap(c.buf) == 0 {
				// Sized by the first read: small messages stay cheap.
				c.buf = make([]byte, 0, min(max(len(p), 4096), 32*1024))
			}
			m, err := c.r.Read(c.buf[:cap(c.buf)])
			c.buf = c.buf[:m]
			c.err = err
			if m == 0 && err == nil {
				return 0, nil
			}
			continue
		}
		if c.buf[0] == '\n' && !c.prevCR {
			// Insert CR; the LF follows, now or on the next Read.
			p[n] = '\r'
			n++
			c.prevCR = true
			if n == len(p) {
				c.buf = c.buf[1:]
				c.pending = true
				return n, nil
			}
			continue
		}
		// Copy a run that holds no bare LF: up to the next LF.
		end := len(c.buf)
		if i := bytes.IndexByte(c.buf[1:], '\n'); i >= 0 {
			end = i + 1
		}
		k := copy(p[n:], c.buf[:end])
		n += k
		c.prevCR = p[n-1] == '\r'
		c.buf = c.buf[k:]
	}
	if n == 0 && len(c.buf) == 0 && c.err != nil {
		return 0, c.err
	}
	return n, nil
}
