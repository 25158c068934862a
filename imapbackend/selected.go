package imapbackend

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailblocks/mailblocks/store"
)

// selected is the session's view of its selected folder: the messages as
// the client knows them, in sequence-number order (ascending UIDs). It
// changes only when the session tells the client (RFC 3501 7.4.1, RFC
// 2180): a message removed by someone else stays until an EXPUNGE may be
// sent.
type selected struct {
	name        string
	folder      store.Folder
	readOnly    bool
	uidValidity uint32
	uidNext     store.UID
	msgs        []msgView
	lastScan    time.Time
	searchRes   imap.UIDSet // RFC 5182 "$"
	pendingGone bool        // some msgs are gone, their EXPUNGE not sent
}

type msgView struct {
	uid   store.UID
	flags []string
	date  time.Time
	size  int64
	gone  bool // removed from the store, EXPUNGE not yet sent
}

func viewOf(mi store.MessageInfo) msgView {
	return msgView{uid: mi.UID, flags: mi.Flags, date: mi.InternalDate, size: mi.Size}
}

// Select implements SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2).
func (s *session) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.unselect()
	name, err := checkName(mailbox)
	if err != nil {
		return nil, err
	}
	f, err := s.mbox.Folder(s.ctx, name)
	if err != nil {
		return nil, s.mapError("select", err, false)
	}
	// Watch before listing, so that no change between the two is missed.
	s.mu.Lock()
	s.selName, s.dirty = f.Name(), false
	s.mu.Unlock()

	st, err := f.Status(s.ctx)
	if err != nil {
		s.clearSel()
		return nil, s.mapError("select", err, false)
	}
	list, err := f.List(s.ctx)
	if err != nil {
		s.clearSel()
		return nil, s.mapError("select", err, false)
	}
	sel := &selected{
		name:        f.Name(),
		folder:      f,
		readOnly:    options != nil && options.ReadOnly,
		uidValidity: st.UIDValidity,
		uidNext:     st.UIDNext,
		msgs:        make([]msgView, len(list)),
		lastScan:    s.b.opts.Now(),
	}
	for i, mi := range list {
		sel.msgs[i] = viewOf(mi)
	}
	if n := len(list); n > 0 && sel.uidNext <= list[n-1].UID {
		sel.uidNext = list[n-1].UID + 1
	}
	s.sel = sel

	data := &imap.SelectData{
		Flags:       mailboxFlags(sel.msgs),
		NumMessages: uint32(len(sel.msgs)),
		UIDNext:     imap.UID(sel.uidNext),
		UIDValidity: sel.uidValidity,
	}
	if !sel.readOnly {
		data.PermanentFlags = append(slices.Clone(data.Flags), imap.FlagWildcard)
	}
	for i, m := range sel.msgs {
		if !hasFlag(m.flags, store.FlagSeen) {
			data.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	if s.conn.EnabledCaps().Has(imap.CapIMAP4rev2) {
		// RFC 9051 6.3.2: the LIST response with the mailbox name.
		data.List = &imap.ListData{Mailbox: sel.name, Delim: Delim}
	}
	return data, nil
}

// mailboxFlags is the FLAGS response: the system flags and the keywords
// in use.
func mailboxFlags(msgs []msgView) []imap.Flag {
	flags := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}
	seen := map[string]bool{}
	for _, m := range msgs {
		for _, f := range m.flags {
			if !strings.HasPrefix(f, `\`) && !seen[f] && validFlag(f) {
				seen[f] = true
			}
		}
	}
	kw := make([]string, 0, len(seen))
	for f := range seen {
		kw = append(kw, f)
	}
	sort.Strings(kw)
	for _, f := range kw {
		flags = append(flags, imap.Flag(f))
	}
	return flags
}

// Unselect implements UNSELECT (RFC 3691) and the end of CLOSE.
func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	s.sel = nil
	s.clearSel()
}

func (s *session) clearSel() {
	s.mu.Lock()
	s.selName, s.dirty = "", false
	s.mu.Unlock()
}

// touched marks the selected folder for a rescan when this session
// changed folder name behind the view's back (APPEND, COPY into it).
func (s *session) touched(name string) {
	s.mu.Lock()
	if s.selName != "" && sameFolder(s.selName, name) {
		s.dirty = true
	}
	s.mu.Unlock()
}

// Poll reports changes of the selected folder after a command (RFC 3501
// 7: untagged EXISTS, EXPUNGE and FETCH FLAGS). EXPUNGE is held back while
// allowExpunge is false (during FETCH, STORE and SEARCH, RFC 3501 7.4.1).
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sel == nil {
		return nil
	}
	s.mu.Lock()
	due := s.dirty || s.b.opts.Now().Sub(s.sel.lastScan) >= s.b.opts.PollInterval ||
		(allowExpunge && s.sel.pendingGone)
	s.mu.Unlock()
	if !due {
		return nil
	}
	return s.rescan(w, allowExpunge)
}

// Idle implements IDLE (RFC 2177): changes are reported as soon as the
// store's events announce them, and at least every PollInterval.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.sel == nil {
		<-stop
		return nil
	}
	if err := s.Poll(w, true); err != nil {
		return err
	}
	t := time.NewTicker(s.b.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
		if err := s.rescan(w, true); err != nil {
			return err
		}
	}
}

// rescan lists the selected folder and tells the client what changed
// since its view.
func (s *session) rescan(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := s.sel
	s.mu.Lock()
	s.dirty = false
	s.mu.Unlock()
	list, err := sel.folder.List(s.ctx)
	if errors.Is(err, store.ErrNoSuchFolder) {
		// Deleted or renamed by another session: RFC 3501 leaves this
		// open; like Dovecot, end the session rather than show a
		// mailbox that no longer exists.
		s.log.Info("imapbackend: selected folder vanished", "folder", sel.name)
		return s.conn.Bye("Selected mailbox was deleted or renamed")
	}
	if err != nil {
		return s.mapError("rescan", err, false)
	}
	sel.lastScan = s.b.opts.Now()

	// Merge the view (ascending UIDs) with the listing (ascending UIDs).
	var (
		j        int
		flagUpds []int // indexes into sel.msgs whose flags changed
		added    []msgView
		anyGone  bool
	)
	for i := range sel.msgs {
		m := &sel.msgs[i]
		for j < len(list) && list[j].UID < m.uid {
			j++ // unknown to the view and older than a known one: ignore
		}
		if j < len(list) && list[j].UID == m.uid {
			if !sameFlags(m.flags, list[j].Flags) {
				m.flags = list[j].Flags
				flagUpds = append(flagUpds, i)
			}
			j++
			continue
		}
		if !m.gone {
			m.gone = true
		}
		anyGone = true
	}
	var maxUID store.UID
	if n := len(sel.msgs); n > 0 {
		maxUID = sel.msgs[n-1].uid
	}
	for ; j < len(list); j++ {
		if list[j].UID > maxUID {
			added = append(added, viewOf(list[j]))
		}
	}

	if anyGone && allowExpunge {
		// Descending order keeps the remaining sequence numbers valid.
		var seqs []uint32
		kept := sel.msgs[:0]
		for i, m := range sel.msgs {
			if m.gone {
				seqs = append(seqs, uint32(i+1))
			}
		}
		for i := len(seqs) - 1; i >= 0; i-- {
			if err := w.WriteExpunge(seqs[i]); err != nil {
				return err
			}
		}
		// Recompute flag update indexes after compaction.
		newIdx := make([]int, len(sel.msgs))
		for i, m := range sel.msgs {
			newIdx[i] = len(kept)
			if !m.gone {
				kept = append(kept, m)
			}
		}
		for k, i := range flagUpds {
			flagUpds[k] = newIdx[i]
		}
		sel.msgs = kept
		anyGone = false
	}
	sel.pendingGone = anyGone
	for _, i := range flagUpds {
		m := sel.msgs[i]
		if m.gone {
			continue
		}
		if err := w.WriteMessageFlags(uint32(i+1), imap.UID(m.uid), imapFlags(m.flags)); err != nil {
			return err
		}
	}
	if len(added) > 0 {
		sel.msgs = append(sel.msgs, added...)
		if last := added[len(added)-1].uid; last >= sel.uidNext {
			sel.uidNext = last + 1
		}
		if err := w.WriteNumMessages(uint32(len(sel.msgs))); err != nil {
			return err
		}
	}
	return nil
}

// removeUIDs drops messages from the view after this session expunged or
// moved them, returning their sequence numbers in descending order, the
// order in which EXPUNGE responses keep later numbers valid.
func (sel *selected) removeUIDs(uids []store.UID) []uint32 {
	if len(uids) == 0 {
		return nil
	}
	rm := make(map[store.UID]bool, len(uids))
	for _, u := range uids {
		rm[u] = true
	}
	var seqs []uint32
	kept := sel.msgs[:0]
	for i, m := range sel.msgs {
		if rm[m.uid] {
			seqs = append(seqs, uint32(i+1))
			continue
		}
		kept = append(kept, m)
	}
	sel.msgs = kept
	slices.Reverse(seqs)
	return seqs
}

// index returns the position of uid in the view, or -1.
func (sel *selected) index(uid store.UID) int {
	i, ok := sort.Find(len(sel.msgs), func(i int) int {
		switch {
		case uid < sel.msgs[i].uid:
			return -1
		case uid > sel.msgs[i].uid:
			return 1
		}
		return 0
	})
	if !ok {
		return -1
	}
	return i
}

// resolve returns the view indexes a sequence or UID set designates,
// ascending, with "*" and "$" (RFC 5182) resolved.
func (sel *selected) resolve(numSet imap.NumSet) []int {
	if imap.IsSearchRes(numSet) {
		numSet = sel.searchRes
	}
	var idx []int
	switch set := numSet.(type) {
	case imap.SeqSet:
		n := uint32(len(sel.msgs))
		if n == 0 {
			return nil
		}
		mark := make([]bool, n)
		for _, r := range set {
			start, stop := staticRange(r.Start, r.Stop, n)
			if start == 0 {
				start = 1
			}
			for q := start; q <= stop && q <= n; q++ {
				mark[q-1] = true
			}
		}
		for i, ok := range mark {
			if ok {
				idx = append(idx, i)
			}
		}
	case imap.UIDSet:
		if len(sel.msgs) == 0 {
			return nil
		}
		max := uint32(sel.msgs[len(sel.msgs)-1].uid)
		ranges := make([][2]uint32, len(set))
		for k, r := range set {
			ranges[k][0], ranges[k][1] = staticRange(uint32(r.Start), uint32(r.Stop), max)
		}
		for i, m := range sel.msgs {
			u := uint32(m.uid)
			for _, r := range ranges {
				if r[0] <= u && u <= r[1] {
					idx = append(idx, i)
					break
				}
			}
		}
	}
	return idx
}

// staticRange resolves "*" (0) to max; "n:*" always includes max even
// when n > max (RFC 3501 6.4.8, RFC 9051 6.4.9).
func staticRange(start, stop, max uint32) (uint32, uint32) {
	if start == 0 {
		start = max
	}
	if stop == 0 {
		stop = max
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

func hasFlag(flags []string, flag string) bool {
	for _, f := range flags {
		if strings.EqualFold(f, flag) {
			return true
		}
	}
	return false
}

func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if !hasFlag(b, f) {
			return false
		}
	}
	return true
}

// imapFlags converts store flags for the wire, leaving out any that is
// not a valid flag atom (RFC 3501 9: go-imap would fail the whole
// response), e.g. a keyword another program wrote into a maildir.
func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, 0, len(flags))
	for _, f := range flags {
		if validFlag(f) {
			out = append(out, imap.Flag(f))
		}
	}
	return out
}

func validFlag(f string) bool {
	if f == "" {
		return false
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '\\' && i == 0 {
			continue
		}
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\\]`, c) >= 0 {
			return false
		}
	}
	return true
}
