package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/mailblocks/mailblocks"
)

// noticeKind is the kind of delivery status notification (RFC 3464).
type noticeKind int

const (
	noticeFailure noticeKind = iota
	noticeDelay
	noticeSuccess
)

// oweFailure records that a failure notice is due, when the recipient's
// NOTIFY asks for one.
func (r *rcptState) oweFailure() {
	if r.recipient().Wants(mailblocks.NotifyFailure) {
		r.Notice = int(noticeFailure) + 1
	}
}

// flushNotices hands over the notices m owes, one per kind for all the
// recipients concerned, and clears the Notice marks of those handed over
// (or refused for good). It reports whether m's record changed; the caller
// saves it. A crash before the save sends them again (at least once).
// noticeMu keeps two goroutines from sending the same notices.
//
// A notice whose hand-off fails with a temporary error stays owed (its
// mark is already on disk) and rec.NoticeNext says when to try again, with
// the deliveries' backoff (Options.RetryInterval doubling up to
// MaxRetryInterval); settle schedules it. A notice still failing
// MaxQueueTime after its first failure is logged at error level and
// dropped: there is nobody left to tell. A permanent refusal (a
// *mailblocks.Error with a 5xx code, say the local sender no longer
// exists) will not get better: it is logged and dropped at once.
func (q *Queue) flushNotices(m *message) bool {
	m.noticeMu.Lock()
	defer m.noticeMu.Unlock()
	q.mu.Lock()
	if m.deleted {
		q.mu.Unlock()
		return false
	}
	snap := m.rec.clone()
	q.mu.Unlock()
	log := q.log.With("id", snap.ID, "from", snap.Env.From)
	var byKind [3][]int
	for i, r := range snap.Rcpt {
		if r.Notice > 0 && r.Notice <= len(byKind) {
			byKind[r.Notice-1] = append(byKind[r.Notice-1], i)
		}
	}
	tried := false
	var done [3]bool
	var failed error
	for k, idx := range byKind {
		if len(idx) == 0 {
			continue
		}
		tried = true
		err := q.notice(snap, noticeKind(k), idx)
		switch {
		case err == nil:
			done[k] = true
		case !mailblocks.IsTemporary(err):
			log.Error("queue: delivery status notification refused, dropped", "kind", noticeKind(k), "error", err)
			done[k] = true
		default:
			log.Warn("queue: could not hand over delivery status notification, will retry", "kind", noticeKind(k), "error", err)
			failed = err
		}
	}
	if !tried {
		return false
	}
	now := q.opts.Clock()
	q.mu.Lock()
	defer q.mu.Unlock()
	rec := m.rec
	if failed != nil {
		if rec.NoticeSince.IsZero() {
			rec.NoticeSince = now
		}
		rec.NoticeTries++
		expiry := rec.NoticeSince.Add(q.opts.MaxQueueTime)
		if now.Before(expiry) {
			rec.NoticeNext = now.Add(q.backoff(rec.NoticeTries))
			if rec.NoticeNext.After(expiry) {
				rec.NoticeNext = expiry
			}
		} else {
			log.Error("queue: delivery status notification still failing after the maximal queue time, dropped",
				"attempts", rec.NoticeTries, "since", rec.NoticeSince, "error", failed)
			done = [3]bool{true, true, true}
		}
	}
	for i := range rec.Rcpt {
		// Only the marks that were tried: a newer one stays.
		if r := &rec.Rcpt[i]; r.Notice > 0 && r.Notice <= len(done) && r.Notice == snap.Rcpt[i].Notice && done[r.Notice-1] {
			r.Notice = 0
		}
	}
	if !m.owesNotice() {
		rec.NoticeTries, rec.NoticeSince, rec.NoticeNext = 0, time.Time{}, time.Time{}
	}
	return true
}

func (k noticeKind) String() string {
	switch k {
	case noticeFailure:
		return "failure"
	case noticeDelay:
		return "delay"
	case noticeSuccess:
		return "success"
	}
	return fmt.Sprintf("noticeKind(%d)", int(k))
}

// notice hands over one DSN of the given kind for the recipients at idx.
// It returns nil when the notice is in safe hands, or needs none.
func (q *Queue) notice(rec *record, kind noticeKind, idx []int) error {
	log := q.log.With("id", rec.ID, "from", rec.Env.From)
	to := rec.Env.From
	if to == "" {
		// RFC 5321 4.5.5 / RFC 3461 6.2: never notify the null
		// reverse-path. Only a failed bounce is worth telling the
		// postmaster about, and not when it was already addressed to
		// the postmaster (that would loop).
		if kind != noticeFailure {
			return nil
		}
		toPostmaster := false
		for _, i := range idx {
			if strings.EqualFold(rec.Rcpt[i].Addr, q.opts.Postmaster) {
				toPostmaster = true
			}
		}
		if q.opts.Postmaster == "" || toPostmaster {
			log.Error("queue: undeliverable message with null sender dropped", "rcpt", rec.Rcpt[idx[0]].Addr, "error", rec.Rcpt[idx[0]].Text)
			return nil
		}
		to = q.opts.Postmaster
	}
	now := q.opts.Clock()
	env := &mailblocks.Envelope{
		From:       "",
		Recipients: []mailblocks.Recipient{{Address: to}},
		Received:   now,
		SMTPUTF8:   rec.Env.SMTPUTF8,
	}
	if b := mailblocks.BodyType(rec.Env.Body); b != "" && b != mailblocks.Body7Bit {
		env.Body = mailblocks.Body8BitMIME
	}
	r := q.report(rec, kind, idx, to, now)

	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := q.writeNotice(pw, r, rec)
		pw.CloseWithError(err)
		werr <- err
	}()
	// The hand-off outlives Close's cancellation: the spool is still open
	// until the delivery that produced the notice has returned.
	ctx := context.WithoutCancel(q.ctx)
	var err error
	if q.opts.Bounce != nil {
		err = q.opts.Bounce.HandleBounce(ctx, env, pr)
	} else {
		_, err = q.enqueue(ctx, env, pr, true)
	}
	pr.CloseWithError(errors.New("queue: notice not read to the end"))
	if e := <-werr; e != nil && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("queue: notice to %s: %w", to, err)
	}
	log.Info("queue: delivery status notification sent", "to", to, "action", r.rcpts[0].action, "rcpts", len(idx))
	return nil
}

// dsnReport is the content of one RFC 3464 report.
type dsnReport struct {
	kind       noticeKind
	hostname   string
	to         string
	envid      string
	arrival    time.Time
	date       time.Time
	msgID      string
	willRetry  time.Time
	full       bool
	rcpts      []dsnRecipient
	origSender string
	// utf8: the message was sent with SMTPUTF8 (RFC 6531), so its
	// addresses and headers may be UTF-8: the report uses the RFC 6533
	// types that allow it.
	utf8 bool
}

type dsnRecipient struct {
	final, original string
	action, status  string
	remoteMTA       string
	diagnostic      string
	lastAttempt     time.Time
}

func (q *Queue) report(rec *record, kind noticeKind, idx []int, to string, now time.Time) *dsnReport {
	r := &dsnReport{
		kind:       kind,
		hostname:   q.opts.Hostname,
		to:         to,
		envid:      rec.Env.EnvelopeID,
		arrival:    rec.Created,
		date:       now,
		msgID:      fmt.Sprintf("<%s.%s.%d@%s>", rec.ID, [...]string{"bounce", "delay", "success"}[kind], now.UnixNano(), q.opts.Hostname),
		willRetry:  rec.Created.Add(q.opts.MaxQueueTime),
		origSender: rec.Env.From,
		utf8:       rec.Env.SMTPUTF8,
		// RFC 3461 4.3: RET=FULL asks for the whole message. A binary
		// body cannot travel inside message/rfc822, and a huge one
		// would get the notice refused: they get the headers only.
		full: rec.Env.Return == string(mailblocks.ReturnFull) && rec.Env.Body != string(mailblocks.BodyBinaryMIME) &&
			rec.Size <= q.opts.ReturnSizeLimit,
	}
	for _, i := range idx {
		rs := &rec.Rcpt[i]
		dr := dsnRecipient{
			final:       rs.Addr,
			original:    rs.ORCPT,
			lastAttempt: rs.LastAttempt,
		}
		if rs.RemoteHost != "" {
			dr.remoteMTA = "dns; " + rs.RemoteHost
		}
		switch kind {
		case noticeSuccess:
			// RFC 3464 2.3.3: "relayed" when the next hop does not
			// take over DSN duties, "delivered" when there was no
			// next hop (a local delivery through the Deliverer).
			dr.action = "relayed"
			if rs.RemoteHost == "" {
				dr.action = "delivered"
			}
			dr.status = "2.0.0"
		case noticeDelay:
			dr.action = "delayed"
			dr.status = statusOf(rs, "4.0.0")
		default:
			dr.action = "failed"
			if rs.Code == 0 || rs.Code/100 == 4 {
				// RFC 3463 X.4.7: delivery time expired, unless the
				// last error said something more precise.
				dr.status = statusOf(rs, "4.4.7")
			} else {
				dr.status = statusOf(rs, "5.0.0")
			}
		}
		if kind != noticeSuccess {
			dr.diagnostic = diagnosticOf(rs)
		}
		r.rcpts = append(r.rcpts, dr)
	}
	return r
}

// statusOf is the RFC 3463 status of a recipient's last failure.
func statusOf(rs *rcptState, def string) string {
	if rs.Enhanced != [3]int{} {
		return mailblocks.EnhancedCode(rs.Enhanced).String()
	}
	switch rs.Code / 100 {
	case 4:
		return "4.0.0"
	case 5:
		return "5.0.0"
	}
	return def
}

// diagnosticOf is the Diagnostic-Code value (RFC 3464 2.3.6): the remote
// SMTP reply when there was one, the local reason otherwise.
func diagnosticOf(rs *rcptState) string {
	text := oneLine(rs.Text)
	if rs.Code == 0 {
		if text == "" {
			return ""
		}
		return "X-Mailblocks; " + text
	}
	s := fmt.Sprintf("smtp; %d", rs.Code)
	if rs.Enhanced != [3]int{} {
		s += " " + mailblocks.EnhancedCode(rs.Enhanced).String()
	}
	if text != "" {
		s += " " + text
	}
	return s
}

// oneLine folds s to one line of at most 900 bytes, cut at a character
// boundary (the text may be UTF-8 in an RFC 6533 report).
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 900 {
		n := 900
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}

const dateFormat = time.RFC1123Z

// writeNotice writes the complete notice: a multipart/report (RFC 3462,
// now RFC 6522) with a human-readable part, the message/delivery-status
// part (RFC 3464) and the original message or its headers.
func (q *Queue) writeNotice(w io.Writer, r *dsnReport, rec *record) error {
	var orig io.Reader
	if body, err := q.spool.openBody(rec); err == nil {
		defer body.Close()
		orig = io.NewSectionReader(body, 0, rec.Size)
	} else {
		q.log.Warn("queue: original message unavailable for notice", "id", rec.ID, "error", err)
	}
	return writeDSN(w, r, orig)
}

// writeDSN writes the notice r, quoting orig (nil: not available). For an
// SMTPUTF8 message the parts are those of RFC 6533 3 and 6:
// message/global-delivery-status, whose fields may hold UTF-8 (the
// multipart/report report-type names it, RFC 6522 3), and message/global
// (RFC 6532 3.7) or message/global-headers for what is returned, since its
// header may be UTF-8 too.
func writeDSN(w io.Writer, r *dsnReport, orig io.Reader) error {
	reportType, fullType, headersType := "delivery-status", "message/rfc822", "text/rfc822-headers"
	if r.utf8 {
		reportType, fullType, headersType = "global-delivery-status", "message/global", "message/global-headers"
	}
	// textproto.Header.Set prepends: fields are set in reverse of the
	// order they appear in.
	var h gomessage.Header
	h.SetContentType("multipart/report", map[string]string{"report-type": reportType})
	h.Set("MIME-Version", "1.0")
	// RFC 3834 5: notices are automatic responses; nobody should answer
	// them automatically.
	h.Set("Auto-Submitted", "auto-replied")
	h.Set("Message-Id", r.msgID)
	h.Set("Date", r.date.Format(dateFormat))
	h.Set("Subject", [...]string{
		"Undelivered Mail Returned to Sender",
		"Delayed Mail (still being retried)",
		"Successful Mail Delivery Report",
	}[r.kind])
	h.Set("To", "<"+r.to+">")
	h.Set("From", fmt.Sprintf("Mail Delivery System <MAILER-DAEMON@%s>", r.hostname))
	mw, err := gomessage.CreateWriter(w, h)
	if err != nil {
		return err
	}

	// Part 1: for humans.
	var th gomessage.Header
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Description", "Notification")
	if !mailblocks.IsASCII(r.humanText()) {
		th.Set("Content-Transfer-Encoding", "quoted-printable")
	}
	pw, err := mw.CreatePart(th)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(pw, r.humanText()); err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return err
	}

	// Part 2: RFC 3464 2.1, per-message fields, then one block of
	// per-recipient fields per recipient, separated by blank lines.
	var dh gomessage.Header
	dh.SetContentType("message/"+reportType, nil)
	dh.Set("Content-Description", "Delivery report")
	pw, err = mw.CreatePart(dh)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(pw, r.statusText()); err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return err
	}

	// Part 3: what was sent (RFC 3462 / RFC 6522 3: the third part is
	// the returned message or its headers).
	if orig != nil {
		var oh gomessage.Header
		if r.full {
			oh.SetContentType(fullType, nil)
			oh.Set("Content-Description", "Undelivered Message")
		} else {
			oh.SetContentType(headersType, nil)
			oh.Set("Content-Description", "Undelivered Message Headers")
		}
		if r.kind == noticeSuccess {
			oh.Set("Content-Description", "Message Headers")
		}
		pw, err = mw.CreatePart(oh)
		if err != nil {
			return err
		}
		if r.full {
			_, err = io.Copy(pw, orig)
		} else {
			err = copyHeader(pw, orig)
		}
		if err != nil {
			return err
		}
		if err := pw.Close(); err != nil {
			return err
		}
	}
	return mw.Close()
}

// copyHeader copies the header section of a message.
func copyHeader(w io.Writer, r io.Reader) error {
	hdr, err := textproto.ReadHeader(bufio.NewReader(r))
	if err != nil {
		// A message without a parseable header: return nothing of it
		// rather than fail the notice.
		return nil
	}
	return textproto.WriteHeader(w, hdr)
}

func (r *dsnReport) humanText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at host %s.\r\n\r\n", r.hostname)
	switch r.kind {
	case noticeFailure:
		b.WriteString("I'm sorry to have to inform you that your message could not\r\n" +
			"be delivered to one or more recipients.\r\n")
		if r.full {
			b.WriteString("It's attached below.\r\n")
		} else {
			b.WriteString("Its headers are attached below.\r\n")
		}
	case noticeDelay:
		fmt.Fprintf(&b, "Your message could not be delivered yet to the recipients below.\r\n"+
			"It will be retried until %s.\r\n", r.willRetry.Format(dateFormat))
	case noticeSuccess:
		b.WriteString("Your message was successfully delivered to the destinations listed\r\n" +
			"below. If the message was relayed to a system that does not send\r\n" +
			"delivery notifications, you will receive no further notice.\r\n")
	}
	if r.origSender == "" {
		b.WriteString("\r\nThe undelivered message was itself a delivery notification.\r\n")
	}
	b.WriteString("\r\n")
	for _, rc := range r.rcpts {
		fmt.Fprintf(&b, "<%s>: %s", rc.final, rc.action)
		if rc.diagnostic != "" {
			fmt.Fprintf(&b, ": %s", rc.diagnostic)
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

func (r *dsnReport) statusText() string {
	var b strings.Builder
	field := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	field("Reporting-MTA", "dns; "+r.hostname)
	if r.envid != "" {
		field("Original-Envelope-Id", r.envid)
	}
	field("Arrival-Date", r.arrival.Format(dateFormat))
	for _, rc := range r.rcpts {
		b.WriteString("\r\n")
		if rc.original != "" {
			o := rc.original
			if !strings.Contains(o, ";") {
				o = "rfc822;" + o
			}
			if typ, addr, _ := strings.Cut(o, ";"); r.utf8 && strings.EqualFold(strings.TrimSpace(typ), "utf-8") {
				// RFC 6533 3: ORCPT carries the xtext form, the
				// global report may show the characters.
				o = typ + ";" + unitext(addr)
			}
			field("Original-Recipient", o)
		}
		if r.utf8 && !mailblocks.IsASCII(rc.final) {
			// RFC 6533 3: a non-ASCII address has the utf-8 type.
			field("Final-Recipient", "utf-8; "+rc.final)
		} else {
			field("Final-Recipient", "rfc822; "+rc.final)
		}
		field("Action", rc.action)
		field("Status", rc.status)
		if rc.remoteMTA != "" {
			field("Remote-MTA", rc.remoteMTA)
		}
		if rc.diagnostic != "" {
			field("Diagnostic-Code", rc.diagnostic)
		}
		if !rc.lastAttempt.IsZero() {
			field("Last-Attempt-Date", rc.lastAttempt.Format(dateFormat))
		}
		if r.kind == noticeDelay {
			field("Will-Retry-Until", r.willRetry.Format(dateFormat))
		}
	}
	return b.String()
}

// unitext decodes the utf-8-addr-xtext form of an address, in which each
// non-ASCII character (and "+", "=", "\") is written "\x{HEXPOINT}", into
// the utf-8-addr-unitext form (RFC 6533 3). What is not a valid escape is
// kept as it is.
func unitext(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		hex := s[i+3 : i+j]
		cp, err := strconv.ParseUint(hex, 16, 32)
		if err != nil || len(hex) < 2 || len(hex) > 6 || !utf8.ValidRune(rune(cp)) {
			b.WriteString(s[:i+j+1])
		} else {
			b.WriteString(s[:i])
			b.WriteRune(rune(cp))
		}
		s = s[i+j+1:]
	}
}
