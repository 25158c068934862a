package store

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeFlags(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{}, nil},
		{[]string{`\seen`, `\SEEN`, `\Seen`}, []string{`\Seen`}},
		{[]string{"$Junk", `\deleted`, "work", "Work"}, []string{"$Junk", `\Deleted`, "work"}},
		{[]string{`\Draft`, `\Answered`, `\Flagged`}, []string{`\Answered`, `\Draft`, `\Flagged`}},
	}
	for _, tt := range tests {
		got, err := NormalizeFlags(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{"", "a b", "a(b", `\Recent`, `\Unknown`, "x\x00", "ü", `a"b`, "a]", "a*", "a%"} {
		_, err := NormalizeFlags([]string{bad})
		assert.ErrorIs(t, err, ErrBadName, "%q", bad)
	}
}

func TestApplyFlags(t *testing.T) {
	cur := []string{"$Work", `\Seen`}
	tests := []struct {
		name  string
		op    FlagOp
		flags []string
		want  []string
	}{
		{"replace", FlagsReplace, []string{`\Deleted`}, []string{`\Deleted`}},
		{"replace empty", FlagsReplace, nil, nil},
		{"add", FlagsAdd, []string{`\Flagged`, `\Seen`}, []string{"$Work", `\Flagged`, `\Seen`}},
		{"add keyword other case", FlagsAdd, []string{"$work"}, []string{"$Work", `\Seen`}},
		{"remove", FlagsRemove, []string{`\Seen`, `\Draft`}, []string{"$Work"}},
		{"remove keyword any case", FlagsRemove, []string{"$WORK"}, []string{`\Seen`}},
		{"remove all", FlagsRemove, []string{"$Work", `\Seen`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ApplyFlags(cur, tt.op, tt.flags)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, []string{"$Work", `\Seen`}, cur, "cur must not change")
		})
	}
	assert.True(t, HasFlag(cur, `\seen`))
	assert.False(t, HasFlag(cur, `\Deleted`))
}

func TestQuotaExceeded(t *testing.T) {
	tests := []struct {
		q                Quota
		b, m, addB, addM int64
		want             bool
	}{
		{Quota{}, 1 << 40, 1 << 30, 100, 1, false},
		{Quota{Bytes: 100}, 50, 1, 50, 1, false},
		{Quota{Bytes: 100}, 50, 1, 51, 1, true},
		{Quota{Messages: 2}, 0, 1, 10, 1, false},
		{Quota{Messages: 2}, 0, 2, 10, 1, true},
		{Quota{Bytes: 100, Messages: 2}, 200, 5, -10, -1, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.q.Exceeded(tt.b, tt.m, tt.addB, tt.addM), "%+v", tt)
	}
}

func TestUsageFits(t *testing.T) {
	tests := []struct {
		u    Usage
		size int64
		want bool
	}{
		{Usage{}, 0, true},
		{Usage{Bytes: 1 << 40, Messages: 1 << 30}, 1 << 40, true}, // no quota
		{Usage{Bytes: 90, Quota: Quota{Bytes: 100}}, 10, true},
		{Usage{Bytes: 90, Quota: Quota{Bytes: 100}}, 11, false},
		{Usage{Bytes: 99, Quota: Quota{Bytes: 100}}, 0, true},   // unknown size: one octet
		{Usage{Bytes: 100, Quota: Quota{Bytes: 100}}, 0, false}, // exactly full
		{Usage{Bytes: 100, Quota: Quota{Bytes: 100}}, -1, false},
		{Usage{Messages: 1, Quota: Quota{Messages: 2}}, 0, true},
		{Usage{Messages: 2, Quota: Quota{Messages: 2}}, 1, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.u.Fits(tt.size), "%+v size %d", tt.u, tt.size)
	}
}

func TestCRLFReader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"a\rb", "a\rb"},
		{"a\r\r\n", "a\r\r\n"},
		{"mixed\r\nand\nbare\n", "mixed\r\nand\r\nbare\r\n"},
		{"no newline", "no newline"},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(CRLFReader(strings.NewReader(tt.in)))
		require.NoError(t, err)
		assert.Equal(t, tt.want, string(got), "%q", tt.in)
		// One byte at a time on both sides exercises the buffer edges.
		got, err = io.ReadAll(iotest.OneByteReader(CRLFReader(iotest.OneByteReader(strings.NewReader(tt.in)))))
		require.NoError(t, err)
		assert.Equal(t, tt.want, string(got), "%q one byte", tt.in)
	}
	require.NoError(t, iotest.TestReader(CRLFReader(strings.NewReader("x\ny\r\nz\n")), []byte("x\r\ny\r\nz\r\n")))
}

// refCRLF is the obvious byte-at-a-time conversion that CRLFReader must
// agree with.
func refCRLF(in []byte) []byte {
	var out []byte
	prev := byte(0)
	for _, b := range in {
		if b == '\n' && prev != '\r' {
			out = append(out, '\r')
		}
		out = append(out, b)
		prev = b
	}
	return out
}

// chunkReader returns its input in reads of at most n bytes.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// FuzzCRLFReader checks CRLFReader and CRLFReaderSize against refCRLF
// whatever the sizes of the reads on both sides and the size hint.
func FuzzCRLFReader(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\r"), uint8(3), int16(-1))
	f.Add([]byte("\n\r\n\r\r\n"), uint8(1), int16(0))
	f.Add(bytes.Repeat([]byte("line\r\n\n\r"), 200), uint8(200), int16(5))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, hint int16) {
		want := refCRLF(in)
		readers := map[string]io.Reader{
			"plain":   CRLFReader(bytes.NewReader(in)),
			"half":    CRLFReader(iotest.HalfReader(bytes.NewReader(in))),
			"onebyte": iotest.OneByteReader(CRLFReader(iotest.OneByteReader(bytes.NewReader(in)))),
			"dataerr": CRLFReader(iotest.DataErrReader(bytes.NewReader(in))),
			"chunked": chunkReader{CRLFReaderSize(chunkReader{bytes.NewReader(in), int(chunk) + 1}, int64(hint)), int(chunk)/2 + 1},
			"sized":   CRLFReaderSize(bytes.NewReader(in), int64(len(in))),
		}
		for name, r := range readers {
			got, err := io.ReadAll(r)
			require.NoError(t, err, name)
			require.Equal(t, string(want), string(got), name)
		}
	})
}
