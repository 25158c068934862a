package imapbackend

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/mailblocks/mailblocks/store"
)

// streamThreshold: BODY[] of a message larger than this streams from the
// store instead of being read into memory first.
const streamThreshold = 1 << 20

// maxHeaderSize bounds how much is read looking for the end of a header.
const maxHeaderSize = 1 << 20

var errGone = errors.New("imapbackend: message expunged")

// Fetch implements FETCH and UID FETCH (RFC 3501 6.4.5, RFC 3516 BINARY).
// Non-PEEK body sections set \Seen (RFC 3501 6.4.5), and the new flags
// are then returned even if FLAGS was not asked for.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := s.sel
	if sel == nil {
		return errNoSelection
	}
	idx := sel.resolve(numSet)
	changed := map[store.UID]bool{}
	if !sel.readOnly && setsSeen(options) {
		var unseen []store.UID
		for _, i := range idx {
			m := sel.msgs[i]
			if !m.gone && !hasFlag(m.flags, store.FlagSeen) {
				unseen = append(unseen, m.uid)
			}
		}
		if len(unseen) > 0 {
			infos, err := sel.folder.SetFlags(s.ctx, unseen, store.FlagsAdd, []string{store.FlagSeen})
			if err != nil {
				return s.mapError("fetch: set seen", err, false)
			}
			for _, mi := range infos {
				if i := sel.index(mi.UID); i >= 0 {
					sel.msgs[i].flags = mi.Flags
					changed[mi.UID] = true
				}
			}
		}
	}
	for _, i := range idx {
		err := s.fetchOne(w, sel, i, options, changed[sel.msgs[i].uid])
		if errors.Is(err, errGone) {
			// RFC 2180 4.1: a message expunged by another session whose
			// EXPUNGE cannot be sent yet is simply left out.
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func setsSeen(o *imap.FetchOptions) bool {
	for _, bs := range o.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range o.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

func needsContent(o *imap.FetchOptions) bool {
	return o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 ||
		len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
}

// msgReader reads one message lazily, at most once, through the cache.
type msgReader struct {
	s      *session
	folder store.Folder
	key    msgKey
	size   int64
	p      parsed // from the cache, completed as we go
	raw    []byte
	dirty  bool // p gained something to cache
}

func (s *session) newMsgReader(sel *selected, m msgView) *msgReader {
	k := msgKey{user: s.user, folder: sel.name, uidValidity: sel.uidValidity, uid: m.uid}
	return &msgReader{s: s, folder: sel.folder, key: k, size: m.size, p: s.b.cache.get(k)}
}

func (r *msgReader) open() (io.ReadCloser, error) {
	rc, err := r.folder.Open(r.s.ctx, r.key.uid)
	if errors.Is(err, store.ErrNoSuchMessage) {
		return nil, errGone
	}
	if err != nil {
		return nil, r.s.mapError("open message", err, false)
	}
	return rc, nil
}

// bytes returns the whole message.
func (r *msgReader) bytes() ([]byte, error) {
	if r.raw != nil {
		return r.raw, nil
	}
	rc, err := r.open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := readSized(rc, r.size)
	if err != nil {
		return nil, r.s.mapError("read message", err, false)
	}
	r.raw = raw
	if r.p.header == nil {
		r.p.header = headerOf(r.raw)
		r.dirty = true
	}
	return r.raw, nil
}

// header returns the raw header, blank line included.
func (r *msgReader) header() ([]byte, error) {
	if r.p.header != nil {
		return r.p.header, nil
	}
	if r.raw != nil {
		r.p.header = headerOf(r.raw)
		r.dirty = true
		return r.p.header, nil
	}
	rc, err := r.open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h, err := readHeader(bufio.NewReader(rc))
	if err != nil {
		return nil, r.s.mapError("read header", err, false)
	}
	r.p.header, r.dirty = h, true
	return h, nil
}

func (r *msgReader) envelope() (*imap.Envelope, error) {
	if r.p.env != nil {
		return r.p.env, nil
	}
	h, err := r.header()
	if err != nil {
		return nil, err
	}
	th, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(h)))
	r.p.env, r.dirty = imapserver.ExtractEnvelope(th), true
	return r.p.env, nil
}

func (r *msgReader) bodyStructure() (imap.BodyStructure, error) {
	if r.p.bs != nil {
		return r.p.bs, nil
	}
	raw, err := r.bytes()
	if err != nil {
		return nil, err
	}
	r.p.bs, r.dirty = sanitizeBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(raw))), true
	return r.p.bs, nil
}

// sanitizeBodyStructure replaces what go-imap cannot encode: a multipart
// without parts (a hostile or broken message would make the FETCH writer
// panic and drop the connection, so that no client could read the
// mailbox) becomes an empty text/plain part (RFC 2046 5.1.1 requires at
// least one body part).
func sanitizeBodyStructure(bs imap.BodyStructure) imap.BodyStructure {
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if len(b.Children) == 0 {
			return &imap.BodyStructureSinglePart{
				Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
				Text:     &imap.BodyStructureText{},
				Extended: &imap.BodyStructureSinglePartExt{},
			}
		}
		for i, c := range b.Children {
			b.Children[i] = sanitizeBodyStructure(c)
		}
		if b.Extended == nil {
			b.Extended = &imap.BodyStructureMultiPartExt{}
		}
	case *imap.BodyStructureSinglePart:
		if b.MessageRFC822 != nil {
			b.MessageRFC822.BodyStructure = sanitizeBodyStructure(b.MessageRFC822.BodyStructure)
		}
		if b.Extended == nil {
			b.Extended = &imap.BodyStructureSinglePartExt{}
		}
	case nil:
		return sanitizeBodyStructure(&imap.BodyStructureMultiPart{})
	}
	return bs
}

func (r *msgReader) save() {
	if r.dirty {
		r.s.b.cache.put(r.key, r.p)
	}
}

// headerOf returns the header of a raw message, up to and including the
// empty line that ends it.
func headerOf(raw []byte) []byte {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			break
		}
		line := raw[i : i+j+1]
		i += j + 1
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			return raw[:i:i]
		}
	}
	return raw[:len(raw):len(raw)]
}

// readHeader reads a header up to and including its blank line, like
// headerOf but from a stream.
func readHeader(br *bufio.Reader) ([]byte, error) {
	var h []byte
	lineStart := true // the next chunk begins a line
	for len(h) < maxHeaderSize {
		chunk, err := br.ReadSlice('\n')
		h = append(h, chunk...)
		if err == io.EOF {
			return h, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			lineStart = false // a long line goes on
			continue
		}
		if err != nil {
			return nil, err
		}
		if lineStart && (len(chunk) == 1 || (len(chunk) == 2 && chunk[0] == '\r')) {
			return h, nil
		}
		lineStart = true
	}
	return h, nil
}

// section is one body section ready to be written: either bytes, or a
// stream of a known size.
type section struct {
	data   []byte
	stream io.ReadCloser
	size   int64
}

func (s *session) fetchOne(w *imapserver.FetchWriter, sel *selected, i int, o *imap.FetchOptions, flagsChanged bool) error {
	m := sel.msgs[i]
	var (
		env      *imap.Envelope
		bs       imap.BodyStructure
		sections = make([]section, len(o.BodySection))
		binaries = make([][]byte, len(o.BinarySection))
		binSizes = make([]uint32, len(o.BinarySectionSize))
	)
	if needsContent(o) {
		if m.gone {
			return errGone
		}
		r := s.newMsgReader(sel, m)
		defer func() {
			for _, sec := range sections {
				if sec.stream != nil {
					sec.stream.Close()
				}
			}
		}()
		var err error
		if o.Envelope {
			if env, err = r.envelope(); err != nil {
				return err
			}
		}
		if o.BodyStructure != nil {
			if bs, err = r.bodyStructure(); err != nil {
				return err
			}
		}
		for k, item := range o.BodySection {
			if sections[k], err = r.section(item); err != nil {
				return err
			}
		}
		for k, item := range o.BinarySection {
			raw, err := r.bytes()
			if err != nil {
				return err
			}
			b, err := binarySection(raw, item.Part)
			if err != nil {
				return err
			}
			sec := bytesSection(b, item.Partial)
			binaries[k] = sec.data
		}
		for k, item := range o.BinarySectionSize {
			raw, err := r.bytes()
			if err != nil {
				return err
			}
			b, err := binarySection(raw, item.Part)
			if err != nil {
				return err
			}
			binSizes[k] = uint32(len(b))
		}
		r.save()
	}

	rw := w.CreateMessage(uint32(i + 1))
	rw.WriteUID(imap.UID(m.uid))
	if o.Flags || flagsChanged {
		rw.WriteFlags(imapFlags(m.flags))
	}
	if o.InternalDate {
		rw.WriteInternalDate(m.date)
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(m.size)
	}
	if env != nil {
		rw.WriteEnvelope(env)
	}
	if bs != nil {
		rw.WriteBodyStructure(bs)
	}
	for k, item := range o.BodySection {
		sec := sections[k]
		wc := rw.WriteBodySection(item, sec.size)
		var err error
		if sec.stream != nil {
			var n int64
			n, err = io.CopyN(wc, sec.stream, sec.size)
			if err == nil && n != sec.size {
				err = fmt.Errorf("imapbackend: message %d shorter than its size", m.uid)
			}
		} else {
			_, err = wc.Write(sec.data)
		}
		if cerr := wc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// The literal is cut short: the connection cannot go on.
			s.log.Error("imapbackend: fetch body", "uid", m.uid, "err", err)
			return err
		}
	}
	for k, item := range o.BinarySection {
		wc := rw.WriteBinarySection(item, int64(len(binaries[k])))
		_, err := wc.Write(binaries[k])
		if cerr := wc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	for k, item := range o.BinarySectionSize {
		rw.WriteBinarySectionSize(item, binSizes[k])
	}
	return rw.Close()
}

// section extracts a body section (RFC 3501 6.4.5 BODY[section]<partial>).
func (r *msgReader) section(item *imap.FetchItemBodySection) (section, error) {
	whole := len(item.Part) == 0
	switch {
	case whole && item.Specifier == imap.PartSpecifierNone && r.raw == nil && r.size > streamThreshold:
		// BODY[] of a large message streams, trusting the store's
		// RFC822.SIZE (CRLF octets).
		rc, err := r.open()
		if err != nil {
			return section{}, err
		}
		off, n := partialRange(r.size, item.Partial)
		if off > 0 {
			if _, err := io.CopyN(io.Discard, rc, off); err != nil {
				rc.Close()
				return section{}, r.s.mapError("read message", err, false)
			}
		}
		return section{stream: rc, size: n}, nil
	case whole && item.Specifier == imap.PartSpecifierNone:
		raw, err := r.bytes()
		if err != nil {
			return section{}, err
		}
		return bytesSection(raw, item.Partial), nil
	case whole && item.Specifier == imap.PartSpecifierHeader:
		h, err := r.header()
		if err != nil {
			return section{}, err
		}
		if len(item.HeaderFields) == 0 && len(item.HeaderFieldsNot) == 0 {
			return bytesSection(h, item.Partial), nil
		}
		b := imapserver.ExtractBodySection(bytes.NewReader(h), item)
		return section{data: b, size: int64(len(b))}, nil
	case whole && item.Specifier == imap.PartSpecifierText:
		raw, err := r.bytes()
		if err != nil {
			return section{}, err
		}
		return bytesSection(raw[len(headerOf(raw)):], item.Partial), nil
	}
	raw, err := r.bytes()
	if err != nil {
		return section{}, err
	}
	b := imapserver.ExtractBodySection(bytes.NewReader(raw), item)
	return section{data: b, size: int64(len(b))}, nil
}

// errUnknownCTE is RFC 3516 section 4.3's answer to BINARY of a part the
// server cannot decode.
var errUnknownCTE = imapNo(imap.ResponseCodeUnknownCTE, "Cannot decode the Content-Transfer-Encoding of this part")

// binarySection returns the part of raw named by part with its
// Content-Transfer-Encoding undone (RFC 3516 BINARY), the whole message's
// header first when part is empty. Only the transfer encoding is undone,
// not the charset: go-imap's ExtractBinarySection also converts text
// parts to UTF-8, and answers an empty part for every charset it does
// not know (ISO-8859-1 among them without go-message/charset), for an
// unknown transfer encoding and for content that does not decode, which
// a client would take for the content. Those last two are errUnknownCTE.
func binarySection(raw []byte, part []int) ([]byte, error) {
	spec, bodySpec := imap.PartSpecifierMIME, imap.PartSpecifierNone
	if len(part) == 0 {
		spec, bodySpec = imap.PartSpecifierHeader, imap.PartSpecifierText
	}
	h := imapserver.ExtractBodySection(bytes.NewReader(raw), &imap.FetchItemBodySection{Part: part, Specifier: spec})
	body := imapserver.ExtractBodySection(bytes.NewReader(raw), &imap.FetchItemBodySection{Part: part, Specifier: bodySpec})
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(h)))
	if err != nil {
		return nil, errUnknownCTE
	}
	hdr := gomessage.Header{Header: th.Copy()}
	decoded := body
	// RFC 2045 6.4: a multipart entity is not encoded (go-message ignores
	// a Content-Transfer-Encoding there too).
	if mt, _, _ := hdr.ContentType(); !strings.HasPrefix(mt, "multipart/") {
		hdr.Del("Content-Type") // so that go-message leaves the charset alone
		e, err := gomessage.New(hdr, bytes.NewReader(body))
		if err != nil {
			return nil, errUnknownCTE
		}
		if decoded, err = io.ReadAll(e.Body); err != nil {
			return nil, errUnknownCTE
		}
	}
	if len(part) == 0 {
		return append(h[:len(h):len(h)], decoded...), nil
	}
	return decoded, nil
}

func bytesSection(b []byte, p *imap.SectionPartial) section {
	off, n := partialRange(int64(len(b)), p)
	return section{data: b[off : off+n], size: n}
}

// partialRange returns the offset and length of <offset.size> within a
// section of total octets (RFC 3501 6.4.5: past the end gives "").
func partialRange(total int64, p *imap.SectionPartial) (int64, int64) {
	if p == nil {
		return 0, total
	}
	if p.Offset >= total || p.Offset < 0 {
		return total, 0
	}
	n := min(p.Size, total-p.Offset)
	if n < 0 {
		n = 0
	}
	return p.Offset, n
}

// readSized reads all of rc, expecting size octets (the store's
// RFC822.SIZE) so that the common case is one exact allocation.
func readSized(rc io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > 64<<20 {
		return io.ReadAll(rc)
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(rc, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return buf[:n], nil
	}
	if err != nil {
		return nil, err
	}
	// The store's size was short: keep whatever follows.
	rest, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return append(buf, rest...), nil
}
