package store

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// crlfBody returns a 1 MB message body of 72-octet lines ending in eol.
func crlfBody(eol string) []byte {
	line := strings.Repeat("x", 72-len(eol)) + eol
	return bytes.Repeat([]byte(line), (1<<20)/len(line))
}

// readAllInto drains r through buf, as io.Copy does.
func readAllInto(b *testing.B, r io.Reader, buf []byte) {
	for {
		_, err := r.Read(buf)
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCRLFReader reads a 1 MB body through CRLFReader with a 32 KiB
// buffer: LF input (every line gains a CR, the maildir case) and CRLF
// input (nothing to change, the memstore case).
func BenchmarkCRLFReader(b *testing.B) {
	for _, eol := range []string{"LF", "CRLF"} {
		body := crlfBody(map[string]string{"LF": "\n", "CRLF": "\r\n"}[eol])
		b.Run(eol, func(b *testing.B) {
			buf := make([]byte, 32*1024)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				readAllInto(b, CRLFReader(bytes.NewReader(body)), buf)
			}
		})
	}
}
