package imapbackend

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailblocks/mailblocks/store"
)

// uidsOf returns the UIDs of the view indexes that are still in the store.
func (sel *selected) uidsOf(idx []int) []store.UID {
	uids := make([]store.UID, 0, len(idx))
	for _, i := range idx {
		if !sel.msgs[i].gone {
			uids = append(uids, sel.msgs[i].uid)
		}
	}
	return uids
}

// Expunge implements EXPUNGE (RFC 3501 6.4.3), UID EXPUNGE (RFC 4315
// 2.1) and the expunge of CLOSE. In a mailbox opened with EXAMINE nothing
// is removed (RFC 3501 6.4.2: CLOSE of a read-only mailbox expunges
// nothing; go-imap does not tell CLOSE from EXPUNGE).
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel := s.sel
	if sel == nil {
		return errNoSelection
	}
	if sel.readOnly {
		return nil
	}
	var only []store.UID
	if uids != nil {
		only = sel.uidsOf(sel.resolve(*uids))
		if len(only) == 0 {
			return nil
		}
	}
	removed, err := sel.folder.Expunge(s.ctx, only)
	if err != nil {
		return s.mapError("expunge", err, false)
	}
	for _, seq := range sel.removeUIDs(removed) {
		if err := w.WriteExpunge(seq); err != nil {
			return err
		}
	}
	return nil
}

// Store implements STORE (RFC 3501 6.4.6): FLAGS, +FLAGS, -FLAGS and their
// .SILENT forms. Without .SILENT the new flags are returned as FETCH
// responses, with the UID (needed for UID STORE, harmless otherwise).
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	sel := s.sel
	if sel == nil {
		return errNoSelection
	}
	if sel.readOnly {
		return errReadOnly
	}
	idx := sel.resolve(numSet)
	uids := sel.uidsOf(idx)
	if len(uids) == 0 {
		return nil
	}
	var op store.FlagOp
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	default:
		op = store.FlagsReplace
	}
	fl, err := storeFlags(flags.Flags)
	if err != nil {
		return err
	}
	infos, err := sel.folder.SetFlags(s.ctx, uids, op, fl)
	if err != nil {
		return s.mapError("store", err, false)
	}
	for _, mi := range infos {
		i := sel.index(mi.UID)
		if i < 0 {
			continue
		}
		sel.msgs[i].flags = mi.Flags
		if flags.Silent {
			continue
		}
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(mi.UID))
		rw.WriteFlags(imapFlags(mi.Flags))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Copy implements COPY (RFC 3501 6.4.7) with COPYUID (RFC 4315).
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	sel := s.sel
	if sel == nil {
		return nil, errNoSelection
	}
	name, err := checkName(dest)
	if err != nil {
		return nil, err
	}
	uids := sel.uidsOf(sel.resolve(numSet))
	if len(uids) == 0 {
		return nil, nil
	}
	res, err := sel.folder.Copy(s.ctx, uids, name)
	if err != nil {
		return nil, s.mapError("copy", err, true)
	}
	s.touched(name)
	return copyData(res), nil
}

func copyData(res store.CopyResult) *imap.CopyData {
	if len(res.Source) == 0 || len(res.Source) != len(res.Dest) {
		return nil
	}
	data := &imap.CopyData{UIDValidity: res.UIDValidity}
	for i := range res.Source {
		data.SourceUIDs.AddNum(imap.UID(res.Source[i]))
		data.DestUIDs.AddNum(imap.UID(res.Dest[i]))
	}
	return data
}

// Move implements MOVE (RFC 6851): COPYUID, then EXPUNGE of the sources.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	sel := s.sel
	if sel == nil {
		return errNoSelection
	}
	if sel.readOnly {
		return errReadOnly
	}
	name, err := checkName(dest)
	if err != nil {
		return err
	}
	if sameFolder(name, sel.name) {
		return imapNo(imap.ResponseCodeCannot, "Source and destination mailboxes are the same")
	}
	uids := sel.uidsOf(sel.resolve(numSet))
	if len(uids) == 0 {
		return nil
	}
	res, err := sel.folder.Move(s.ctx, uids, name)
	if err != nil {
		return s.mapError("move", err, true)
	}
	if data := copyData(res); data != nil {
		if err := w.WriteCopyData(data); err != nil {
			return err
		}
	}
	for _, seq := range sel.removeUIDs(res.Source) {
		if err := w.WriteExpunge(seq); err != nil {
			return err
		}
	}
	return nil
}
