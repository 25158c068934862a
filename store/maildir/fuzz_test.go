package maildir

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
)

// FuzzCRLF checks that what is written to disk and read back is what
// store.CRLFReader would give, and that the sizes counted while writing
// (the W= of the file name) and by virtualSize are exact.
func FuzzCRLF(f *testing.F) {
	for _, s := range []string{"", "a\nb\n", "a\r\nb\r\n", "\r\r\n", "\r", "\n\n\r", "x\ry\r\n\nz", "\r\n\r"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		want, err := io.ReadAll(store.CRLFReader(bytes.NewReader(in)))
		require.NoError(t, err)

		var disk bytes.Buffer
		lw := &lfWriter{w: bufio.NewWriter(&disk)}
		step := int(chunk%7) + 1
		for p := in; len(p) > 0; {
			n := min(step, len(p))
			_, err := lw.Write(p[:n])
			require.NoError(t, err)
			p = p[n:]
		}
		require.NoError(t, lw.Close())
		require.Equal(t, int64(disk.Len()), lw.disk)
		require.NotContains(t, disk.String(), "\r\n\n", "no CRLF from input survives before LF")

		got, err := io.ReadAll(iotest.OneByteReader(store.CRLFReader(bytes.NewReader(disk.Bytes()))))
		require.NoError(t, err)
		got2, err := io.ReadAll(store.CRLFReaderSize(iotest.HalfReader(bytes.NewReader(disk.Bytes())), int64(disk.Len())))
		require.NoError(t, err)
		require.Equal(t, got, got2)
		require.Equal(t, int64(len(got)), lw.virtual, "W= size")
		vs, err := virtualSize(bytes.NewReader(disk.Bytes()))
		require.NoError(t, err)
		require.Equal(t, int64(len(got)), vs)
		if !bytes.Contains(in, []byte("\r\r")) && !bytes.HasSuffix(in, []byte("\r")) {
			// Plain CRLF or LF input reads back as its CRLF form.
			require.Equal(t, want, got)
		}
	})
}

// FuzzFolderName checks that every valid folder name maps to a single,
// safe directory name that decodes back to it.
func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"INBOX", "Sent", "Lists/Work", "a.b", "Entwürfe", "R&D", "..", "a/../b", "&AC4-", "日本語/x", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, err := checkFolderName(name)
		if err != nil {
			require.ErrorIs(t, err, store.ErrBadName)
			return
		}
		if c == store.Inbox {
			return
		}
		enc := encodeFolder(c)
		require.True(t, strings.HasPrefix(enc, "."))
		require.NotContains(t, enc, "/")
		require.NotContains(t, enc, "..")
		require.NotEqual(t, ".", enc)
		for i := 0; i < len(enc); i++ {
			require.True(t, enc[i] >= 0x20 && enc[i] < 0x7f, "ASCII only: %q", enc)
		}
		dec, ok := decodeFolder(enc)
		require.True(t, ok, "decode %q", enc)
		require.Equal(t, c, dec)
	})
}

// FuzzIndexLine checks the index line parser on junk and round trips.
func FuzzIndexLine(f *testing.F) {
	for _, s := range []string{"1 1700000000 42 123.M1P2Q3.host,S=40,W=42", "0 0 0 x", "4294967296 1 1 x", "1 2 3 ", "5 -1 7 a b c", "x y z w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := parseEntry([]byte(line))
		if !ok {
			return
		}
		require.NotZero(t, e.uid)
		require.NotEmpty(t, e.base)
		out := appendEntry(nil, e)
		e2, ok := parseEntry(out[:len(out)-1])
		require.True(t, ok)
		require.Equal(t, e, e2)
	})
}
