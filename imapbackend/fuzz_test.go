package imapbackend

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailblocks/mailblocks/store"
)

// FuzzCheckName: a name accepted by checkName is always one the store
// accepts, never escapes with ".." and is canonical for INBOX.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"INBOX", "inbox", "a/b", "../x", "/abs", "a//b", "Café/日本", "x\x00y", "inbox/Sub"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := checkName(name)
		if err != nil {
			return
		}
		if verr := store.ValidateFolderName(got); verr != nil {
			t.Fatalf("checkName(%q) = %q, store refuses it: %v", name, got, verr)
		}
		for _, part := range strings.Split(got, "/") {
			if part == ".." || part == "." || part == "" {
				t.Fatalf("checkName(%q) = %q", name, got)
			}
		}
		if strings.EqualFold(got, "INBOX") && got != "INBOX" {
			t.Fatalf("INBOX not canonical: %q", got)
		}
	})
}

// FuzzMessage: whatever a message holds, extracting FETCH items and
// searching it does not panic and section bounds hold.
func FuzzMessage(f *testing.F) {
	f.Add([]byte(msgPlain))
	f.Add([]byte(msgMultipart))
	f.Add([]byte("no header end"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h := headerOf(raw)
		if !bytes.HasPrefix(raw, h) {
			t.Fatal("header is not a prefix")
		}
		if len(raw) < maxHeaderSize {
			hs, err := readHeader(bufio.NewReaderSize(bytes.NewReader(raw), 16))
			if err != nil || !bytes.Equal(hs, h) {
				t.Fatalf("readHeader = %q, %v; headerOf = %q", hs, err, h)
			}
		}
		r := &msgReader{raw: raw, size: int64(len(raw)), s: &session{b: New(nil, Options{CacheSize: -1})}}
		if _, err := r.envelope(); err != nil {
			t.Fatal(err)
		}
		bs, err := r.bodyStructure()
		if err != nil {
			t.Fatal(err)
		}
		checkEncodable(t, bs)
		for _, item := range []*imap.FetchItemBodySection{
			{}, {Specifier: imap.PartSpecifierHeader}, {Specifier: imap.PartSpecifierText},
			{Part: []int{1}}, {Part: []int{2, 1}, Specifier: imap.PartSpecifierMIME},
			{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}},
			{Partial: &imap.SectionPartial{Offset: 3, Size: 7}},
		} {
			sec, err := r.section(item)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(sec.data)) != sec.size {
				t.Fatalf("section %+v: size %d for %d octets", item, sec.size, len(sec.data))
			}
		}
		mc := &matchCtx{r: r}
		_, _ = mc.matchBody("needle", true)
		_, _ = mc.matchBody("zebra", false)
	})
}

// checkEncodable asserts what go-imap's BODYSTRUCTURE writer needs: no
// multipart without parts, extension data present.
func checkEncodable(t *testing.T, bs imap.BodyStructure) {
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if len(b.Children) == 0 || b.Extended == nil {
			t.Fatalf("unencodable multipart %+v", b)
		}
		for _, c := range b.Children {
			checkEncodable(t, c)
		}
	case *imap.BodyStructureSinglePart:
		if b.Extended == nil {
			t.Fatalf("single part without extension data")
		}
		if b.MessageRFC822 != nil {
			checkEncodable(t, b.MessageRFC822.BodyStructure)
		}
	default:
		t.Fatalf("body structure %T", bs)
	}
}
