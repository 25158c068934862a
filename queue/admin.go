package queue

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/mailblocks/mailblocks"
)

// Entry describes a queued message for administration.
type Entry struct {
	ID         string // queue ID
	MessageID  string // the envelope's ID (mailblocks.Envelope.ID)
	From       string // reverse-path, "" for the null sender
	Recipients []RecipientStatus
	Size       int64 // body size in bytes
	Created    time.Time
	Age        time.Duration // at the time of the listing (Options.Clock)
	// Attempts is the highest attempt count of the pending recipients.
	Attempts int
	// NextAttempt is the earliest next attempt of the pending
	// recipients; zero when a delivery is in progress or held.
	NextAttempt time.Time
	// LastError is the most recent failure of a pending recipient, nil
	// when there was none.
	LastError *mailblocks.Error
	Held      bool
	// Delivering is set while a delivery of the message is in progress.
	Delivering bool
	// NoticeRetry is when the delivery status notifications of the
	// message that Options.Bounce could not take are tried again; zero
	// when no hand-off has failed. A message stays in the queue while it
	// owes notices, even with no recipient pending.
	NoticeRetry time.Time
}

// RecipientStatus is the state of one recipient of a queued message.
type RecipientStatus struct {
	Address     string
	State       State
	Attempts    int
	LastAttempt time.Time
	NextAttempt time.Time // zero unless pending
	// LastError is the last failure (code, enhanced code and text as the
	// remote gave them), nil when there was none. Code is 0 for a failure
	// without SMTP meaning (network, DNS, local), whose text is kept.
	LastError  *mailblocks.Error
	RemoteHost string
}

// waitLoaded waits until the messages of the previous run are indexed, so
// that administration sees the whole queue.
func (q *Queue) waitLoaded(ctx context.Context) error {
	select {
	case <-q.loaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List returns every message in the queue, oldest first.
func (q *Queue) List(ctx context.Context) ([]Entry, error) {
	if err := q.waitLoaded(ctx); err != nil {
		return nil, err
	}
	q.mu.Lock()
	now := q.opts.Clock()
	out := make([]Entry, 0, len(q.sched.msgs))
	for _, m := range q.sched.msgs {
		out = append(out, entryOf(m, now))
	}
	q.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Get returns the message with that queue ID, or ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (Entry, error) {
	if err := q.waitLoaded(ctx); err != nil {
		return Entry{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.sched.msgs[id]
	if m == nil {
		return Entry{}, ErrNotFound
	}
	return entryOf(m, q.opts.Clock()), nil
}

func entryOf(m *message, now time.Time) Entry {
	rec := m.rec
	e := Entry{
		ID:         rec.ID,
		MessageID:  rec.Env.ID,
		From:       rec.Env.From,
		Size:       rec.Size,
		Created:    rec.Created,
		Age:        now.Sub(rec.Created),
		Held:       rec.Held,
		Delivering: m.running > 0,
		Recipients: make([]RecipientStatus, len(rec.Rcpt)),
	}
	if m.owesNotice() {
		e.NoticeRetry = rec.NoticeNext
	}
	var last time.Time
	for i := range rec.Rcpt {
		r := &rec.Rcpt[i]
		rs := RecipientStatus{
			Address:     r.Addr,
			State:       r.State,
			Attempts:    r.Attempts,
			LastAttempt: r.LastAttempt,
			LastError:   r.lastError(),
			RemoteHost:  r.RemoteHost,
		}
		if r.State == StatePending {
			e.Attempts = max(e.Attempts, r.Attempts)
			if rs.LastError != nil && !r.LastAttempt.Before(last) {
				e.LastError, last = rs.LastError, r.LastAttempt
			}
			if j := m.job(mailblocks.DomainOf(r.Addr)); j != nil && (j.state == jobWaiting || j.state == jobReady) {
				rs.NextAttempt = j.due
				if e.NextAttempt.IsZero() || j.due.Before(e.NextAttempt) {
					e.NextAttempt = j.due
				}
			}
		}
		e.Recipients[i] = rs
	}
	return e
}

// Retry makes the pending recipients of message id, and the notices it
// could not hand over, due now (held messages stay held but are due as soon
// as they are released).
func (q *Queue) Retry(ctx context.Context, id string) error {
	if err := q.waitLoaded(ctx); err != nil {
		return err
	}
	q.mu.Lock()
	m := q.sched.msgs[id]
	if m == nil {
		q.mu.Unlock()
		return ErrNotFound
	}
	q.retryLocked(m, q.opts.Clock())
	q.mu.Unlock()
	q.Wake()
	return nil
}

// Flush makes every pending recipient in the queue due now (Postfix
// "postqueue -f").
func (q *Queue) Flush(ctx context.Context) error {
	if err := q.waitLoaded(ctx); err != nil {
		return err
	}
	q.mu.Lock()
	now := q.opts.Clock()
	for _, m := range q.sched.msgs {
		q.retryLocked(m, now)
	}
	q.mu.Unlock()
	q.Wake()
	return nil
}

func (q *Queue) retryLocked(m *message, now time.Time) {
	for _, j := range m.jobs {
		// An administrator's retry overrides a dead destination.
		delete(q.sched.deadUntil, j.domain)
		switch j.state {
		case jobWaiting:
			if j.due.After(now) {
				q.scheduleLocked(j, now)
			}
		case jobRunning:
			j.retryNow = true
		}
		// A held job needs nothing: Release makes it due now.
	}
	if j := m.noticeJob; j != nil && j.state == jobWaiting && j.due.After(now) {
		q.scheduleLocked(j, now)
	}
}

// Delete removes message id from the queue without notifying anyone. A
// delivery already in progress is not interrupted (its recipients may
// still receive the message); the files go when it ends.
func (q *Queue) Delete(ctx context.Context, id string) error {
	if err := q.waitLoaded(ctx); err != nil {
		return err
	}
	q.mu.Lock()
	m := q.sched.msgs[id]
	if m == nil {
		q.mu.Unlock()
		return ErrNotFound
	}
	now := q.deleteLocked(m)
	q.mu.Unlock()
	if now {
		q.removeFiles(m)
	}
	return nil
}

// DeleteAll removes every message from the queue, as Delete does.
func (q *Queue) DeleteAll(ctx context.Context) error {
	if err := q.waitLoaded(ctx); err != nil {
		return err
	}
	q.mu.Lock()
	var rm []*message
	for _, m := range q.sched.msgs {
		if q.deleteLocked(m) {
			rm = append(rm, m)
		}
	}
	q.mu.Unlock()
	for _, m := range rm {
		q.removeFiles(m)
	}
	return nil
}

// deleteLocked unindexes m and reports whether its files can go now (no
// delivery in progress).
func (q *Queue) deleteLocked(m *message) bool {
	delete(q.sched.msgs, m.rec.ID)
	m.deleted = true
	for _, j := range m.jobs {
		if j.state != jobRunning {
			q.unscheduleLocked(j, jobRemoved)
		}
	}
	q.unscheduleNoticeLocked(m)
	return m.running == 0
}

// Hold stops delivery attempts of message id until Release (Postfix
// "postsuper -h"). A delivery in progress finishes. Notices the message
// could not hand over are still retried: they concern deliveries done.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.setHeld(ctx, id, true)
}

// Release undoes Hold; the message's pending recipients are due now.
func (q *Queue) Release(ctx context.Context, id string) error {
	return q.setHeld(ctx, id, false)
}

func (q *Queue) setHeld(ctx context.Context, id string, held bool) error {
	if err := q.waitLoaded(ctx); err != nil {
		return err
	}
	q.mu.Lock()
	m := q.sched.msgs[id]
	if m == nil {
		q.mu.Unlock()
		return ErrNotFound
	}
	changed := m.rec.Held != held
	m.rec.Held = held
	now := q.opts.Clock()
	for _, j := range m.jobs {
		switch {
		case held && (j.state == jobWaiting || j.state == jobReady):
			q.unscheduleLocked(j, jobHeld)
		case !held && j.state == jobHeld:
			q.scheduleLocked(j, now)
		}
	}
	q.mu.Unlock()
	if changed {
		q.persist(m)
	}
	q.Wake()
	return nil
}
