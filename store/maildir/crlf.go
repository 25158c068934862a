package maildir

import (
	"bytes"
	"io"
)

// crlfReader turns every LF not preceded by CR into CRLF, like
// store.CRLFReader, a buffer at a time rather than a byte at a time
// (it reads every message body, so it is worth being fast).
type crlfReader struct {
	r    io.Reader
	buf  []byte // unread input
	back []byte // storage of buf
	last byte   // last input byte handed out
	owe  bool   // the LF of an inserted CRLF is still owed
	err  error
}

// maxCRLFBuffer bounds the read buffer of one crlfReader.
const maxCRLFBuffer = 32 * 1024

func newCRLFReader(r io.Reader) *crlfReader {
	return newCRLFReaderSize(r, maxCRLFBuffer)
}

// newCRLFReaderSize sizes the buffer for an input of about size bytes: a
// FETCH or SEARCH over thousands of small messages should not allocate
// 32 KiB for each of them.
func newCRLFReaderSize(r io.Reader, size int64) *crlfReader {
	n := int64(maxCRLFBuffer)
	if size >= 0 && size+1 < n {
		n = max(size+1, 512)
	}
	return &crlfReader{r: r, back: make([]byte, n)}
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.owe {
			p[n] = '\n'
			n++
			c.owe, c.last = false, '\n'
			c.buf = c.buf[1:] // the LF we expanded
			continue
		}
		if len(c.buf) == 0 {
			if n > 0 || c.err != nil {
				break
			}
			m, err := c.r.Read(c.back)
			c.buf, c.err = c.back[:m], err
			continue
		}
		// Copy up to the next LF that needs a CR.
		i := 0
		for {
			j := bytes.IndexByte(c.buf[i:], '\n')
			if j < 0 {
				i = len(c.buf)
				break
			}
			before := c.last
			if i+j > 0 {
				before = c.buf[i+j-1]
			}
			if before != '\r' {
				i += j
				break
			}
			i += j + 1
		}
		m := copy(p[n:], c.buf[:i])
		n += m
		if m > 0 {
			c.last = c.buf[m-1]
		}
		c.buf = c.buf[m:]
		if m < i || len(c.buf) == 0 {
			continue
		}
		// c.buf[0] is an LF that needs a CR.
		if n == len(p) {
			break
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
