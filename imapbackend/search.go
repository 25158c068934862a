package imapbackend

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Search implements SEARCH and UID SEARCH (RFC 3501 6.4.4) with ESEARCH
// results (RFC 4731: MIN, MAX, COUNT, ALL) and SAVE (RFC 5182). Flags,
// dates, sizes and numbers come from the session's view; HEADER, BODY,
// TEXT and SENT* read the message. String matches are case-insensitive
// substring matches on decoded header values and decoded text parts.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := s.sel
	if sel == nil {
		return nil, errNoSelection
	}
	crit := sel.staticCriteria(criteria)
	var (
		data   imap.SearchData
		seqSet imap.SeqSet
		uidSet imap.UIDSet
	)
	for i, m := range sel.msgs {
		mc := &matchCtx{s: s, sel: sel, m: m, seq: uint32(i + 1)}
		ok, err := mc.match(crit)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		uidSet.AddNum(imap.UID(m.uid))
		num := uint32(i + 1)
		if kind == imapserver.NumKindUID {
			num = uint32(m.uid)
		} else {
			seqSet.AddNum(num)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if options != nil && options.ReturnSave {
		sel.searchRes = uidSet
	}
	return &data, nil
}

// staticCriteria resolves "*" and "$" in a copy of the criteria, against
// the view as it is when the search starts.
func (sel *selected) staticCriteria(c *imap.SearchCriteria) *imap.SearchCriteria {
	out := *c
	out.SeqNum, out.UID = nil, nil
	for _, set := range c.SeqNum {
		var st imap.SeqSet
		for _, i := range sel.resolve(set) {
			st.AddNum(uint32(i + 1))
		}
		out.SeqNum = append(out.SeqNum, st)
	}
	for _, set := range c.UID {
		var st imap.UIDSet
		if imap.IsSearchRes(set) {
			st = append(st, sel.searchRes...)
		} else {
			n := uint32(0)
			if len(sel.msgs) > 0 {
				n = uint32(sel.msgs[len(sel.msgs)-1].uid)
			}
			for _, r := range set {
				a, b := staticRange(uint32(r.Start), uint32(r.Stop), n)
				st.AddRange(imap.UID(a), imap.UID(b))
			}
		}
		out.UID = append(out.UID, st)
	}
	out.Not = make([]imap.SearchCriteria, len(c.Not))
	for i := range c.Not {
		out.Not[i] = *sel.staticCriteria(&c.Not[i])
	}
	out.Or = make([][2]imap.SearchCriteria, len(c.Or))
	for i := range c.Or {
		out.Or[i][0] = *sel.staticCriteria(&c.Or[i][0])
		out.Or[i][1] = *sel.staticCriteria(&c.Or[i][1])
	}
	return &out
}

// matchCtx evaluates criteria for one message, reading it at most once.
type matchCtx struct {
	s   *session
	sel *selected
	m   msgView
	seq uint32
	r   *msgReader
	hdr *mail.Header
}

func (mc *matchCtx) reader() *msgReader {
	if mc.r == nil {
		mc.r = mc.s.newMsgReader(mc.sel, mc.m)
	}
	return mc.r
}

func (mc *matchCtx) header() (*mail.Header, error) {
	if mc.hdr != nil {
		return mc.hdr, nil
	}
	h, err := mc.reader().header()
	if err != nil {
		return nil, err
	}
	mc.reader().save()
	th, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(h)))
	mc.hdr = &mail.Header{Header: gomessage.Header{Header: th}}
	return mc.hdr, nil
}

// match reports whether the message matches c. A message expunged by
// someone else (its EXPUNGE not sent yet) matches no content criterion.
func (mc *matchCtx) match(c *imap.SearchCriteria) (bool, error) {
	m := mc.m
	for _, set := range c.SeqNum {
		if !set.Contains(mc.seq) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		if !set.Contains(imap.UID(m.uid)) {
			return false, nil
		}
	}
	if !matchDate(m.date, c.Since, c.Before) {
		return false, nil
	}
	for _, f := range c.Flag {
		if !hasFlag(m.flags, string(f)) {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(m.flags, string(f)) {
			return false, nil
		}
	}
	if c.Larger != 0 && m.size <= c.Larger {
		return false, nil
	}
	if c.Smaller != 0 && m.size >= c.Smaller {
		return false, nil
	}
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() || len(c.Body) > 0 || len(c.Text) > 0 {
		if m.gone {
			return false, nil
		}
		ok, err := mc.matchContent(c)
		if errors.Is(err, errGone) {
			return false, nil
		}
		if err != nil || !ok {
			return false, err
		}
	}
	for i := range c.Not {
		ok, err := mc.match(&c.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range c.Or {
		ok, err := mc.match(&c.Or[i][0])
		if err != nil {
			return false, err
		}
		if !ok {
			if ok, err = mc.match(&c.Or[i][1]); err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

func (mc *matchCtx) matchContent(c *imap.SearchCriteria) (bool, error) {
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		h, err := mc.header()
		if err != nil {
			return false, err
		}
		for _, hc := range c.Header {
			if !matchFields(h.FieldsByKey(hc.Key), hc.Value) {
				return false, nil
			}
		}
		if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
			t, err := h.Date()
			if err != nil || t.IsZero() || !matchDate(t, c.SentSince, c.SentBefore) {
				return false, nil
			}
		}
	}
	for _, text := range c.Text {
		ok, err := mc.matchBody(text, true)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, text := range c.Body {
		ok, err := mc.matchBody(text, false)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// matchBody searches the text of the message (and its header fields for
// TEXT). A fast path looks at the raw octets first: when they contain
// the string the message matches; otherwise encoded parts (base64,
// quoted-printable, encoded words) are decoded and searched.
func (mc *matchCtx) matchBody(text string, withHeader bool) (bool, error) {
	if text == "" {
		return true, nil
	}
	raw, err := mc.reader().bytes()
	if err != nil {
		return false, err
	}
	mc.reader().save()
	needle := []byte(text)
	body := raw
	if !withHeader {
		body = raw[len(headerOf(raw)):]
	}
	if containsFold(body, needle) {
		return true, nil
	}
	if !mayBeEncoded(raw) {
		// Plain 7bit/8bit text without encoded words: the raw octets
		// are the text, so the miss is final.
		return false, nil
	}
	ent, err := gomessage.Read(bytes.NewReader(raw))
	if ent == nil {
		return false, nil
	}
	_ = err // unknown charsets still give a readable entity
	return matchEntity(ent, needle, withHeader), nil
}

func matchEntity(e *gomessage.Entity, needle []byte, withHeader bool) bool {
	if withHeader && matchFields(e.Header.Fields(), string(needle)) {
		return true
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			// An unknown charset or transfer encoding still gives a
			// readable part (raw octets), as for the top-level entity;
			// only the end of the parts or a malformed one gives none.
			p, _ := mr.NextPart()
			if p == nil {
				return false
			}
			if matchEntity(p, needle, withHeader) {
				return true
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(e.Body, 64<<20))
	if err != nil && len(b) == 0 {
		return false
	}
	return containsFold(b, needle)
}

func matchFields(fields gomessage.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	needle := []byte(pattern)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if containsFold([]byte(v), needle) {
			return true
		}
	}
	return false
}

// containsFold reports whether needle occurs in hay, ignoring case: ASCII
// folding in place for speed, Unicode simple folding when either side has
// non-ASCII text.
func containsFold(hay, needle []byte) bool {
	if len(needle) == 0 {
		return true
	}
	if isASCII(needle) {
		return indexFold(hay, needle) >= 0
	}
	if !utf8.Valid(hay) {
		return bytes.Contains(bytes.ToLower(hay), bytes.ToLower(needle))
	}
	return strings.Contains(strings.ToLower(string(hay)), strings.ToLower(string(needle)))
}

// indexFold is bytes.Index with ASCII case folding; needle must be ASCII.
func indexFold(hay, needle []byte) int {
	if len(needle) == 0 {
		return 0
	}
	first := lowerASCII(needle[0])
	upper := first
	if 'a' <= first && first <= 'z' {
		upper = first - ('a' - 'A')
	}
	for i := 0; i+len(needle) <= len(hay); i++ {
		c := hay[i]
		if c != first && c != upper {
			continue
		}
		if equalFoldASCIIBytes(hay[i:i+len(needle)], needle) {
			return i
		}
	}
	return -1
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func equalFoldASCIIBytes(a, b []byte) bool {
	for i := range a {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// matchDate compares dates only, disregarding time and timezone (RFC 3501
// 6.4.4): t's calendar date in its own zone against [since, before).
func matchDate(t, since, before time.Time) bool {
	if since.IsZero() && before.IsZero() {
		return true
	}
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() {
		sd := time.Date(since.Year(), since.Month(), since.Day(), 0, 0, 0, 0, time.UTC)
		if d.Before(sd) {
			return false
		}
	}
	if !before.IsZero() {
		bd := time.Date(before.Year(), before.Month(), before.Day(), 0, 0, 0, 0, time.UTC)
		if !d.Before(bd) {
			return false
		}
	}
	return true
}

// mayBeEncoded reports whether a message may hold text that differs from
// its raw octets: a transfer encoding (RFC 2045 6), encoded words (RFC
// 2047) or a charset other than ASCII and UTF-8.
func mayBeEncoded(raw []byte) bool {
	if bytes.Contains(raw, []byte("=?")) || indexFold(raw, []byte("base64")) >= 0 ||
		indexFold(raw, []byte("quoted-printable")) >= 0 {
		return true
	}
	rest := raw
	for {
		i := indexFold(rest, []byte("charset="))
		if i < 0 {
			return false
		}
		rest = rest[i+len("charset="):]
		v := bytes.TrimLeft(rest, `"`)
		if indexFold(v[:min(len(v), 5)], []byte("utf-8")) != 0 && indexFold(v[:min(len(v), 8)], []byte("us-ascii")) != 0 {
			return true
		}
	}
}
