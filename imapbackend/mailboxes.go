package imapbackend

import (
	"errors"
	"io"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailblocks/mailblocks/store"
)

// respCodeUseAttr is RFC 6154 5.3's USEATTR response code.
const respCodeUseAttr imap.ResponseCode = "USEATTR"

// Create implements CREATE (RFC 3501 6.3.3) with RFC 6154 USE.
func (s *session) Create(mailbox string, options *imap.CreateOptions) error {
	// RFC 3501 6.3.3: a trailing delimiter only says the client intends
	// to create names under it.
	mailbox = strings.TrimSuffix(mailbox, string(Delim))
	name, err := checkName(mailbox)
	if err != nil {
		return err
	}
	var use store.SpecialUse
	if options != nil {
		switch len(options.SpecialUse) {
		case 0:
		case 1:
			use = specialUseOf(options.SpecialUse[0])
			if use == "" {
				return imapNo(respCodeUseAttr, "Unsupported special-use attribute")
			}
		default:
			return imapNo(respCodeUseAttr, "Only one special-use attribute per mailbox")
		}
	}
	return s.mapError("create", s.mbox.CreateFolder(s.ctx, name, use), false)
}

func specialUseOf(attr imap.MailboxAttr) store.SpecialUse {
	for _, u := range []store.SpecialUse{store.SpecialAll, store.SpecialArchive, store.SpecialDrafts,
		store.SpecialFlagged, store.SpecialJunk, store.SpecialSent, store.SpecialTrash} {
		if strings.EqualFold(string(attr), string(u)) {
			return u
		}
	}
	return ""
}

// Delete implements DELETE (RFC 3501 6.3.4); children are kept.
func (s *session) Delete(mailbox string) error {
	name, err := checkName(mailbox)
	if err != nil {
		return err
	}
	return s.mapError("delete", s.mbox.DeleteFolder(s.ctx, name), false)
}

// Rename implements RENAME (RFC 3501 6.3.5), children included.
func (s *session) Rename(mailbox, newName string, _ *imap.RenameOptions) error {
	from, err := checkName(mailbox)
	if err != nil {
		return err
	}
	to, err := checkName(newName)
	if err != nil {
		return err
	}
	if err := s.mbox.RenameFolder(s.ctx, from, to); err != nil {
		return s.mapError("rename", err, false)
	}
	s.followRename(from, to)
	return nil
}

// followRename keeps the selected folder selected when this session
// renames it or one of its parents, as other servers do. (RENAME INBOX
// leaves INBOX in place, empty: RFC 3501 6.3.5.)
func (s *session) followRename(from, to string) {
	sel := s.sel
	if sel == nil || from == "INBOX" {
		return
	}
	var newName string
	switch {
	case sel.name == from:
		newName = to
	case strings.HasPrefix(sel.name, from+string(Delim)):
		newName = to + sel.name[len(from):]
	default:
		return
	}
	f, err := s.mbox.Folder(s.ctx, newName)
	if err != nil {
		return // the next poll ends the session
	}
	sel.folder, sel.name = f, f.Name()
	s.mu.Lock()
	s.selName = sel.name
	s.mu.Unlock()
}

// Subscribe implements SUBSCRIBE (RFC 3501 6.3.6).
func (s *session) Subscribe(mailbox string) error { return s.subscribe(mailbox, true) }

// Unsubscribe implements UNSUBSCRIBE (RFC 3501 6.3.7).
func (s *session) Unsubscribe(mailbox string) error { return s.subscribe(mailbox, false) }

func (s *session) subscribe(mailbox string, on bool) error {
	name, err := checkName(mailbox)
	if err != nil {
		return err
	}
	return s.mapError("subscribe", s.mbox.SetSubscribed(s.ctx, name, on), false)
}

// Status implements STATUS (RFC 3501 6.3.10, RFC 8438 SIZE, RFC 9051
// DELETED, RFC 7889 APPENDLIMIT).
func (s *session) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	name, err := checkName(mailbox)
	if err != nil {
		return nil, err
	}
	f, err := s.mbox.Folder(s.ctx, name)
	if err != nil {
		return nil, s.mapError("status", err, false)
	}
	return s.statusData(f, options)
}

func (s *session) statusData(f store.Folder, options *imap.StatusOptions) (*imap.StatusData, error) {
	st, err := f.Status(s.ctx)
	if err != nil {
		return nil, s.mapError("status", err, false)
	}
	u32 := func(n int) *uint32 { v := uint32(n); return &v }
	data := &imap.StatusData{Mailbox: f.Name(), UIDNext: imap.UID(st.UIDNext), UIDValidity: st.UIDValidity}
	if options.NumMessages {
		data.NumMessages = u32(st.Messages)
	}
	if options.NumUnseen {
		data.NumUnseen = u32(st.Unseen)
	}
	if options.NumDeleted {
		data.NumDeleted = u32(st.Deleted)
	}
	if options.NumRecent {
		data.NumRecent = u32(0) // \Recent is not tracked (obsolete in RFC 9051)
	}
	if options.Size {
		size := st.Size
		data.Size = &size
	}
	if options.AppendLimit {
		data.AppendLimit = &s.b.opts.AppendLimit
	}
	return data, nil
}

// Append implements APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315).
// The message streams to the store.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	name, err := checkName(mailbox)
	if err != nil {
		return nil, err
	}
	f, err := s.mbox.Folder(s.ctx, name)
	if err != nil {
		return nil, s.mapError("append", err, true)
	}
	flags, err := storeFlags(options.Flags)
	if err != nil {
		return nil, err
	}
	uid, err := f.Append(s.ctx, &fullLiteral{r: r, left: r.Size()}, flags, options.Time)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Message literal cut short"}
	}
	if err != nil {
		return nil, s.mapError("append", err, true)
	}
	// RFC 3501 6.3.11: APPEND to the selected mailbox is announced with
	// EXISTS at once, not when the store's event arrives.
	s.touched(f.Name())
	st, err := f.Status(s.ctx)
	if err != nil {
		return nil, s.mapError("append", err, false)
	}
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: st.UIDValidity}, nil
}

// fullLiteral fails a literal that ends before its announced size. The
// literal reader of go-imap is a LimitReader on the connection: when the
// client goes away in the middle of the literal it reports a plain io.EOF,
// and the store would keep the truncated message as if it were complete.
type fullLiteral struct {
	r    io.Reader
	left int64
}

func (l *fullLiteral) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// storeFlags converts client flags for the store, dropping \Recent, which
// only the server may set (RFC 3501 2.3.2), and refusing malformed ones.
func storeFlags(flags []imap.Flag) ([]string, error) {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, string(f))
	}
	norm, err := store.NormalizeFlags(out)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Invalid flag"}
	}
	return norm, nil
}

// listEntry is one name LIST may show: a folder, or a parent that only
// exists because it has children.
type listEntry struct {
	info     store.FolderInfo
	exists   bool
	children bool
	subChild bool // some descendant is subscribed (RFC 5258 CHILDINFO)
}

// List implements LIST (RFC 3501 6.3.8), LIST-EXTENDED (RFC 5258) with
// LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154), CHILDREN (RFC 3348),
// and LSUB.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// RFC 3501 6.3.8: an empty pattern asks for the delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: Delim})
	}
	folders, err := s.mbox.Folders(s.ctx)
	if err != nil {
		return s.mapError("list", err, false)
	}
	entries := map[string]*listEntry{}
	for _, fi := range folders {
		e := entries[fi.Name]
		if e == nil {
			e = &listEntry{}
			entries[fi.Name] = e
		}
		e.info, e.exists = fi, true
	}
	for _, fi := range folders {
		name := fi.Name
		for i := strings.LastIndexByte(name, Delim); i > 0; i = strings.LastIndexByte(name, Delim) {
			name = name[:i]
			e := entries[name]
			if e == nil {
				e = &listEntry{info: store.FolderInfo{Name: name}}
				entries[name] = e
			}
			e.children = true
			if fi.Subscribed {
				e.subChild = true
			}
		}
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "INBOX") != (names[j] == "INBOX") {
			return names[i] == "INBOX"
		}
		return names[i] < names[j]
	})

	for _, name := range names {
		e := entries[name]
		if !matchAny(name, ref, patterns) {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: Delim}
		if options.SelectSubscribed {
			if !e.info.Subscribed {
				if !(options.SelectRecursiveMatch && e.subChild) {
					continue
				}
				data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
			}
		}
		if options.SelectSpecialUse && e.info.SpecialUse == "" {
			continue
		}
		if !e.exists {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if e.children {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if e.info.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		// RFC 6154 2: special-use attributes are shown in every LIST
		// response, not only with RETURN (SPECIAL-USE), as most servers
		// and clients expect.
		if e.info.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(e.info.SpecialUse))
		}
		if options.ReturnStatus != nil && e.exists {
			f, err := s.mbox.Folder(s.ctx, name)
			if err == nil {
				data.Status, err = s.statusData(f, options.ReturnStatus)
			}
			if err != nil {
				// The folder went away between Folders and now: list
				// it without status rather than fail the whole LIST.
				s.log.Debug("imapbackend: list status", "folder", name, "err", err)
				data.Status = nil
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, Delim, ref, p) {
			return true
		}
		// RFC 3501 5.1: INBOX is case-insensitive, so is a pattern for it.
		if name == "INBOX" && imapserver.MatchList(name, Delim, strings.ToUpper(ref), strings.ToUpper(p)) {
			return true
		}
	}
	return false
}
