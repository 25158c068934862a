package pop3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/mailblocks/mailblocks/store"
)

// message is one message of the maildrop snapshot.
type message struct {
	uid       store.UID
	size      int64
	deleted   bool // DELE in this session
	retrieved bool // RETR in this session: \Seen at UPDATE
}

// maildrop is the INBOX as it was at login. RFC 1939 section 4 lets the
// server show only the messages present when the maildrop was locked;
// numbers 1..n stay those of the snapshot for the whole session.
type maildrop struct {
	folder      store.Folder
	uidValidity uint32
	msgs        []message
	// broken is set when a response could not be completed (a store
	// read failed half way through RETR): the session must end.
	broken bool
}

func openMaildrop(ctx context.Context, st Store, user string) (*maildrop, error) {
	mb, err := st.Mailbox(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("pop3: mailbox %s: %w", user, err)
	}
	f, err := mb.Folder(ctx, "INBOX")
	if err != nil {
		return nil, fmt.Errorf("pop3: INBOX of %s: %w", user, err)
	}
	status, err := f.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("pop3: status of INBOX of %s: %w", user, err)
	}
	list, err := f.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("pop3: list INBOX of %s: %w", user, err)
	}
	d := &maildrop{folder: f, uidValidity: status.UIDValidity, msgs: make([]message, len(list))}
	for i, m := range list {
		d.msgs[i] = message{uid: m.UID, size: m.Size}
	}
	return d, nil
}

// stat counts the messages not marked deleted and their size.
func (d *maildrop) stat() (n int, size int64) {
	for _, m := range d.msgs {
		if !m.deleted {
			n++
			size += m.size
		}
	}
	return n, size
}

// uidl is the unique-id of message m (RFC 1939 section 7): UIDVALIDITY
// and UID in hexadecimal, stable across sessions and restarts as long as
// the folder keeps its UIDVALIDITY, and never reused (store UIDs are not).
func (d *maildrop) uidl(m *message) string {
	return fmt.Sprintf("%08x%08x", d.uidValidity, uint32(m.uid))
}

// transaction runs a TRANSACTION-state command; false if cmd is not one.
func (s *session) transaction(ctx context.Context, cmd command) bool {
	switch cmd.Name {
	case "STAT":
		n, size := s.drop.stat()
		s.replyf("+OK %d %d", n, size)
	case "LIST":
		s.cmdList(cmd)
	case "UIDL":
		s.cmdUIDL(cmd)
	case "RETR":
		s.cmdRetr(ctx, cmd)
	case "TOP":
		s.cmdTop(ctx, cmd)
	case "DELE":
		if m, num := s.messageArg(cmd, 1); m != nil {
			m.deleted = true
			s.replyf("+OK message %d deleted", num)
		}
	case "RSET":
		for i := range s.drop.msgs {
			s.drop.msgs[i].deleted = false
		}
		n, size := s.drop.stat()
		s.replyf("+OK maildrop has %d messages (%d octets)", n, size)
	default:
		return false
	}
	return !s.drop.broken
}

// messageArg parses the message-number argument of cmd, which must have
// exactly want arguments. It answers -ERR itself and returns nil when the
// number is invalid, out of range or deleted.
func (s *session) messageArg(cmd command, want int) (*message, int) {
	if len(cmd.Args) != want {
		s.reply("-ERR wrong number of arguments")
		return nil, 0
	}
	num, ok := parseNumber(cmd.Args[0])
	if !ok || num < 1 {
		s.reply("-ERR invalid message number")
		return nil, 0
	}
	if num > len(s.drop.msgs) {
		s.replyf("-ERR no such message, only %d messages in maildrop", len(s.drop.msgs))
		return nil, 0
	}
	m := &s.drop.msgs[num-1]
	if m.deleted {
		s.replyf("-ERR message %d already deleted", num)
		return nil, 0
	}
	return m, num
}

// parseNumber parses a message number or line count: decimal digits only
// (RFC 1939 section 3), so that "+1", "-0" or " 1" are not taken for
// numbers as strconv.Atoi would. Values beyond int are not numbers
// either.
func parseNumber(arg string) (int, bool) {
	if arg == "" {
		return 0, false
	}
	for i := 0; i < len(arg); i++ {
		if arg[i] < '0' || arg[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(arg)
	return n, err == nil
}

func (s *session) cmdList(cmd command) {
	if len(cmd.Args) > 0 {
		if m, num := s.messageArg(cmd, 1); m != nil {
			s.replyf("+OK %d %d", num, m.size)
		}
		return
	}
	n, size := s.drop.stat()
	s.replyf("+OK %d messages (%d octets)", n, size)
	for i, m := range s.drop.msgs {
		if !m.deleted {
			s.w.WriteString(strconv.Itoa(i + 1))
			s.w.WriteByte(' ')
			s.w.WriteString(strconv.FormatInt(m.size, 10))
			s.w.WriteString("\r\n")
		}
	}
	if s.srv.tracing() {
		s.srv.trace(s.id, "S", fmt.Sprintf("<%d scan listings>", n))
	}
	s.reply(".")
}

func (s *session) cmdUIDL(cmd command) {
	if len(cmd.Args) > 0 {
		if m, num := s.messageArg(cmd, 1); m != nil {
			s.replyf("+OK %d %s", num, s.drop.uidl(m))
		}
		return
	}
	s.reply("+OK unique-id listing follows")
	n := 0
	for i := range s.drop.msgs {
		m := &s.drop.msgs[i]
		if !m.deleted {
			n++
			s.w.WriteString(strconv.Itoa(i + 1))
			s.w.WriteByte(' ')
			s.w.WriteString(s.drop.uidl(m))
			s.w.WriteString("\r\n")
		}
	}
	if s.srv.tracing() {
		s.srv.trace(s.id, "S", fmt.Sprintf("<%d unique-id listings>", n))
	}
	s.reply(".")
}

func (s *session) cmdRetr(ctx context.Context, cmd command) {
	m, num := s.messageArg(cmd, 1)
	if m == nil {
		return
	}
	if s.sendMessage(ctx, m, num, fmt.Sprintf("+OK %d octets", m.size), -1) {
		m.retrieved = true
	}
}

func (s *session) cmdTop(ctx context.Context, cmd command) {
	m, num := s.messageArg(cmd, 2)
	if m == nil {
		return
	}
	lines, ok := parseNumber(cmd.Args[1])
	if !ok {
		s.reply("-ERR invalid number of lines")
		return
	}
	s.sendMessage(ctx, m, num, "+OK top of message follows", lines)
}

// sendMessage sends the +OK line and the message as a multi-line
// response; lines >= 0 limits the body to that many lines (TOP).
func (s *session) sendMessage(ctx context.Context, m *message, num int, ok string, lines int) bool {
	rc, err := s.drop.folder.Open(ctx, m.uid)
	if err != nil {
		if errors.Is(err, store.ErrNoSuchMessage) {
			// Expunged by another program (IMAP) since login.
			s.replyf("-ERR [SYS/PERM] message %d no longer exists", num)
			return false
		}
		s.logger.Error("pop3: open message", "uid", m.uid, "err", err)
		s.replyf("-ERR [SYS/TEMP] cannot read message %d", num)
		return false
	}
	defer rc.Close()
	s.reply(ok)
	dw := newDotWriter(s.w)
	var dst io.Writer = dw
	if lines >= 0 {
		dst = &topWriter{w: dw, limit: lines}
	}
	n, err := io.Copy(dst, rc)
	if err != nil && !errors.Is(err, errTopDone) {
		// The +OK is out: the response cannot be turned into an error,
		// and terminating it would hand the client a truncated message
		// as if it were whole. End the session instead.
		s.logger.Error("pop3: read message", "uid", m.uid, "err", err)
		s.drop.broken = true
		return false
	}
	dw.Close()
	if s.srv.tracing() {
		s.srv.trace(s.id, "S", fmt.Sprintf("<%d octets of message %d>", n, num))
		s.srv.trace(s.id, "S", ".")
	}
	return true
}

// update is the UPDATE state (RFC 1939 section 6), entered by QUIT from
// TRANSACTION: the messages marked deleted, and only they, are flagged
// \Deleted and expunged; the retrieved ones are flagged \Seen for IMAP.
func (s *session) update(ctx context.Context) {
	var del, seen []store.UID
	for _, m := range s.drop.msgs {
		switch {
		case m.deleted:
			del = append(del, m.uid)
		case m.retrieved:
			seen = append(seen, m.uid)
		}
	}
	if len(seen) > 0 {
		if _, err := s.drop.folder.SetFlags(ctx, seen, store.FlagsAdd, []string{store.FlagSeen}); err != nil {
			s.logger.Warn("pop3: set \\Seen", "user", s.user, "err", err)
		}
	}
	if len(del) > 0 {
		_, err := s.drop.folder.SetFlags(ctx, del, store.FlagsAdd, []string{store.FlagDeleted})
		if err == nil {
			_, err = s.drop.folder.Expunge(ctx, del)
		}
		if err != nil {
			s.logger.Error("pop3: expunge", "user", s.user, "err", err)
			s.reply("-ERR [SYS/TEMP] some deleted messages not removed")
			return
		}
	}
	left := len(s.drop.msgs) - len(del)
	s.logger.Info("pop3: logged out", "user", s.user, "deleted", len(del), "left", left)
	if left == 0 {
		s.replyf("+OK %s POP3 server signing off (maildrop empty)", s.srv.opts.Hostname)
	} else {
		s.replyf("+OK %s POP3 server signing off (%d messages left)", s.srv.opts.Hostname, left)
	}
}
