package queue

import (
	"container/heap"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailblocks/mailblocks"
)

// The scheduler works on jobs: one job is the set of pending recipients of
// one message at one destination domain, delivered with one Deliver call.
// A job is in exactly one place: the waiting heap (ordered by due time), the
// ready list of its domain (due, waiting for a delivery slot), running, or
// held. Ready lists are FIFO per domain; the dispatcher gives free slots to
// domains in turn, within the per-domain limit, and a delivery goroutine
// keeps taking ready jobs of its domain (up to Options.Batch) so that the
// Deliverer sees consecutive messages for one destination and can reuse its
// connection. A temporary failure reschedules only that job: one domain's
// (or one recipient's) trouble does not hold back the others.
//
// Everything here is guarded by Queue.mu.

type jobState uint8

const (
	jobWaiting jobState = iota
	jobReady
	jobRunning
	jobHeld
	jobRemoved
)

type message struct {
	rec     *record
	jobs    []*job // one per domain with pending recipients (a slice: usually one)
	running int    // delivery jobs in flight (not noticeJob)
	deleted bool   // deleted by an administrator
	// noticeJob retries the hand-off of notices that failed
	// (retrynotice.go); nil when none is scheduled or while it runs.
	noticeJob *job

	// persistMu orders writes of this message's files; gone is set when
	// they are removed, after which nothing may be written.
	persistMu sync.Mutex
	gone      bool
	// noticeMu serialises flushNotices.
	noticeMu sync.Mutex
}

// owesNotice reports whether a notice of m is still to be sent.
func (m *message) owesNotice() bool {
	for i := range m.rec.Rcpt {
		if m.rec.Rcpt[i].Notice != 0 {
			return true
		}
	}
	return false
}

// job returns m's job for domain d, nil if none.
func (m *message) job(d string) *job {
	for _, j := range m.jobs {
		if j.domain == d {
			return j
		}
	}
	return nil
}

type job struct {
	m        *message
	domain   string
	due      time.Time
	idx      int // in the waiting heap, -1 when not in it
	state    jobState
	gen      uint64 // invalidates stale ready-list entries
	retryNow bool   // Retry called while running
	notice   bool   // a notice retry (domain noticeDomain), not a delivery
}

type readyEntry struct {
	j   *job
	gen uint64
}

type readyList struct {
	jobs []readyEntry
	head int
}

type scheduler struct {
	msgs     map[string]*message
	waiting  jobHeap
	ready    map[string]*readyList
	domains  []string // domains that have a ready list, served in turn
	active   int
	activeBy map[string]int
	// deadUntil holds destinations that could not be reached at all
	// (every recipient deferred without a RemoteHost): their ready jobs
	// wait until then instead of each trying, and timing out, in turn.
	// Postfix does the same ("dead destination") until its next queue
	// scan.
	deadUntil map[string]time.Time
}

func (s *scheduler) init() {
	s.msgs = make(map[string]*message)
	s.ready = make(map[string]*readyList)
	s.activeBy = make(map[string]int)
	s.deadUntil = make(map[string]time.Time)
}

// dead reports whether domain d is marked unreachable at now, forgetting
// marks that have expired.
func (s *scheduler) dead(d string, now time.Time) bool {
	until, ok := s.deadUntil[d]
	if !ok {
		return false
	}
	if now.Before(until) {
		return true
	}
	delete(s.deadUntil, d)
	return false
}

type jobHeap []*job

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(a, b int) bool {
	if !h[a].due.Equal(h[b].due) {
		return h[a].due.Before(h[b].due)
	}
	return h[a].m.rec.ID < h[b].m.rec.ID
}
func (h jobHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].idx = a
	h[b].idx = b
}
func (h *jobHeap) Push(x any) {
	j := x.(*job)
	j.idx = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.idx = -1
	return j
}

// addLocked indexes a message (new or loaded) and schedules its pending
// recipients. It reports false when the message has nothing left to do, no
// recipient pending and no notice owed (and is not indexed). The retry of
// owed notices is left to settle.
func (q *Queue) addLocked(rec *record) (*message, bool) {
	m := &message{rec: rec}
	for _, r := range rec.Rcpt {
		if r.State != StatePending {
			continue
		}
		d := mailblocks.DomainOf(r.Addr)
		j := m.job(d)
		if j == nil {
			j = &job{m: m, domain: d, idx: -1, due: r.NextAttempt}
			m.jobs = append(m.jobs, j)
		} else if r.NextAttempt.Before(j.due) {
			j.due = r.NextAttempt
		}
	}
	if len(m.jobs) == 0 && !m.owesNotice() {
		return m, false
	}
	q.sched.msgs[rec.ID] = m
	for _, j := range m.jobs {
		if rec.Held {
			j.state = jobHeld
		} else {
			q.scheduleLocked(j, j.due)
		}
	}
	return m, true
}

// scheduleLocked puts a job in the waiting heap at due.
func (q *Queue) scheduleLocked(j *job, due time.Time) {
	j.due = due
	j.gen++
	if j.idx >= 0 {
		heap.Fix(&q.sched.waiting, j.idx)
	} else {
		j.state = jobWaiting
		heap.Push(&q.sched.waiting, j)
	}
}

// unscheduleLocked takes a job out of the heap or its ready list.
func (q *Queue) unscheduleLocked(j *job, st jobState) {
	if j.idx >= 0 {
		heap.Remove(&q.sched.waiting, j.idx)
	}
	j.gen++
	j.state = st
}

func (s *scheduler) pushReady(j *job) {
	j.state = jobReady
	j.gen++
	rl := s.ready[j.domain]
	if rl == nil {
		rl = &readyList{}
		s.ready[j.domain] = rl
		s.domains = append(s.domains, j.domain)
	}
	rl.jobs = append(rl.jobs, readyEntry{j, j.gen})
}

// popReady takes the next valid ready job of domain d and marks it running.
func (s *scheduler) popReady(d string) *job {
	rl := s.ready[d]
	if rl == nil {
		return nil
	}
	for rl.head < len(rl.jobs) {
		e := rl.jobs[rl.head]
		rl.jobs[rl.head] = readyEntry{}
		rl.head++
		if rl.head == len(rl.jobs) {
			rl.jobs, rl.head = rl.jobs[:0], 0
		} else if rl.head > 1024 && rl.head > len(rl.jobs)/2 {
			rl.jobs = append(rl.jobs[:0], rl.jobs[rl.head:]...)
			rl.head = 0
		}
		if e.gen == e.j.gen && e.j.state == jobReady {
			e.j.state = jobRunning
			if !e.j.notice {
				e.j.m.running++
			}
			return e.j
		}
	}
	return nil
}

// loop is the scheduler: it moves due jobs to the ready lists, starts
// delivery goroutines, and sleeps until the next job is due or something
// changes (Wake).
func (q *Queue) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		q.mu.Lock()
		if q.stopping {
			q.mu.Unlock()
			return
		}
		now := q.opts.Clock()
		s := &q.sched
		for len(s.waiting) > 0 && !s.waiting[0].due.After(now) {
			s.pushReady(heap.Pop(&s.waiting).(*job))
		}
		q.dispatchLocked(ctx, now)
		var next time.Time
		if len(s.waiting) > 0 {
			next = s.waiting[0].due
		}
		for d, until := range s.deadUntil {
			if _, ok := s.ready[d]; ok && (next.IsZero() || until.Before(next)) {
				next = until
			}
		}
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(next.Sub(now))
			tc = timer.C
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-tc:
		}
		timer.Stop()
	}
}

func (q *Queue) dispatchLocked(ctx context.Context, now time.Time) {
	s := &q.sched
	for s.active < q.opts.Concurrency && len(s.domains) > 0 {
		// One pass gives each domain at most one more slot; a domain
		// that got one goes to the end of the list (round robin).
		started := false
		for i, n := 0, len(s.domains); n > 0 && s.active < q.opts.Concurrency; n-- {
			d := s.domains[i]
			if s.activeBy[d] >= q.opts.PerDomainConcurrency || s.dead(d, now) {
				i++
				continue
			}
			j := s.popReady(d)
			s.domains = slices.Delete(s.domains, i, i+1)
			if j == nil {
				delete(s.ready, d)
				continue
			}
			s.domains = append(s.domains, d)
			s.active++
			s.activeBy[d]++
			q.workers.Add(1)
			go q.worker(ctx, d, j)
			started = true
		}
		if !started {
			return
		}
	}
}

// worker delivers j, then further ready jobs of the same domain.
func (q *Queue) worker(ctx context.Context, domain string, j *job) {
	defer q.workers.Done()
	for n := 1; ; n++ {
		q.deliverJob(ctx, j)
		q.mu.Lock()
		j = nil
		if n < q.opts.Batch && !q.stopping && ctx.Err() == nil && !q.sched.dead(domain, q.opts.Clock()) {
			j = q.sched.popReady(domain)
		}
		if j == nil {
			q.sched.active--
			if q.sched.activeBy[domain]--; q.sched.activeBy[domain] <= 0 {
				delete(q.sched.activeBy, domain)
			}
			q.mu.Unlock()
			q.Wake()
			return
		}
		q.mu.Unlock()
	}
}

var errNoStatus = errors.New("queue: deliverer returned no status for this recipient")

func (q *Queue) deliverJob(ctx context.Context, j *job) {
	if j.notice {
		q.runNoticeJob(j)
		return
	}
	q.mu.Lock()
	m := j.m
	rec := m.rec
	var idx []int
	for i := range rec.Rcpt {
		if rec.Rcpt[i].State == StatePending && mailblocks.DomainOf(rec.Rcpt[i].Addr) == j.domain {
			idx = append(idx, i)
		}
	}
	env := rec.envelope(idx)
	q.mu.Unlock()

	var results []mailblocks.DeliveryStatus
	called := false
	if len(idx) > 0 {
		body, err := q.spool.openBody(rec)
		if err != nil {
			q.log.Error("queue: cannot read message body", "id", rec.ID, "error", err)
			results = make([]mailblocks.DeliveryStatus, len(idx))
			for k := range results {
				results[k] = mailblocks.DeliveryStatus{Recipient: env.Recipients[k].Address, Err: mailblocks.ErrTemporary.Wrap(err)}
			}
		} else {
			results = q.d.Deliver(ctx, env, body, rec.Size)
			called = true
			body.Close()
		}
	}
	q.finish(j, idx, results, called && ctx.Err() == nil)
}

// finish records the outcome of a delivery attempt. answered is set when the
// Deliverer ran to completion (not cancelled), so that its results say
// something about the destination.
func (q *Queue) finish(j *job, idx []int, results []mailblocks.DeliveryStatus, answered bool) {
	q.mu.Lock()
	m := j.m
	rec := m.rec
	now := q.opts.Clock()
	m.running--
	var evs []Event
	expiry := rec.Created.Add(q.opts.MaxQueueTime)
	nextDue := time.Time{}
	unreachable := answered && len(idx) > 0
	for k, i := range idx {
		r := &rec.Rcpt[i]
		st := mailblocks.DeliveryStatus{Err: errNoStatus}
		if k < len(results) {
			st = results[k]
		}
		if st.Recipient != "" && !strings.EqualFold(st.Recipient, r.Addr) {
			q.log.Warn("queue: deliverer reported statuses out of order", "id", rec.ID, "want", r.Addr, "got", st.Recipient)
		}
		ev := Event{ID: rec.ID, Recipient: r.Addr, Domain: j.domain, Time: now, Err: st.Err}
		if st.Err == nil || st.RemoteHost != "" || !mailblocks.IsTemporary(st.Err) {
			unreachable = false
		}
		r.Attempts++
		r.LastAttempt = now
		r.RemoteHost = st.RemoteHost
		r.RemoteDSN = st.RemoteDSN
		if st.Err == nil {
			r.State = StateDelivered
			r.NextAttempt = time.Time{}
			ev.Kind = EventDelivered
			if r.recipient().Wants(mailblocks.NotifySuccess) && !st.RemoteDSN {
				r.Notice = int(noticeSuccess) + 1
			}
			evs = append(evs, ev)
			continue
		}
		r.setError(st.Err)
		switch {
		case !mailblocks.IsTemporary(st.Err):
			r.State = StateFailed
			r.NextAttempt = time.Time{}
			ev.Kind = EventBounced
			r.oweFailure()
		case !now.Before(expiry):
			r.State = StateFailed
			r.NextAttempt = time.Time{}
			ev.Kind = EventExpired
			r.oweFailure()
		default:
			ev.Kind = EventDeferred
			r.NextAttempt = now.Add(q.backoff(r.Attempts))
			if r.NextAttempt.After(expiry) {
				r.NextAttempt = expiry
			}
			if nextDue.IsZero() || r.NextAttempt.Before(nextDue) {
				nextDue = r.NextAttempt
			}
			if q.opts.DelayWarning > 0 && !r.DelayNotified && now.Sub(rec.Created) >= q.opts.DelayWarning &&
				r.recipient().Wants(mailblocks.NotifyDelay) {
				r.DelayNotified = true
				r.Notice = int(noticeDelay) + 1
			}
		}
		evs = append(evs, ev)
	}
	if unreachable {
		q.sched.deadUntil[j.domain] = now.Add(q.opts.RetryInterval)
	} else if answered {
		delete(q.sched.deadUntil, j.domain)
	}
	switch {
	case nextDue.IsZero():
		m.jobs = slices.DeleteFunc(m.jobs, func(x *job) bool { return x == j })
		j.state = jobRemoved
	case m.deleted:
		j.state = jobRemoved
	case rec.Held:
		j.state = jobHeld
		j.retryNow = false
	default:
		if j.retryNow {
			nextDue = now
		}
		j.retryNow = false
		j.state = jobWaiting
		q.scheduleLocked(j, nextDue)
	}
	q.mu.Unlock()
	q.Wake()

	for _, ev := range evs {
		q.emit(ev)
	}
	q.settle(m, true, false)
}

func (r *rcptState) setError(err error) {
	var se *mailblocks.Error
	if errors.As(err, &se) {
		r.Code, r.Enhanced, r.Text = se.Code, [3]int(se.Enhanced), se.Message
		if se.Message == "" && se.Err != nil {
			r.Text = se.Err.Error()
		}
		return
	}
	// No SMTP meaning: a local or network problem, temporary
	// (mailblocks.IsTemporary). Keep its text for the listing.
	r.Code, r.Enhanced, r.Text = 0, [3]int{}, err.Error()
}

// backoff is the wait after the n-th failed attempt: RetryInterval doubled
// at each attempt, capped at MaxRetryInterval (as Postfix does between
// minimal_backoff_time and maximal_backoff_time).
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.RetryInterval
	for i := 1; i < n && d < q.opts.MaxRetryInterval; i++ {
		d *= 2
	}
	return min(d, q.opts.MaxRetryInterval)
}

// persist writes the message's current progress.
func (q *Queue) persist(m *message) {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	if m.gone {
		return
	}
	q.mu.Lock()
	snap := m.rec.clone()
	q.mu.Unlock()
	if err := q.spool.update(snap); err != nil {
		// The previous state stays: recipients may be tried again.
		q.log.Error("queue: saving progress", "id", snap.ID, "error", err)
	}
}

func (q *Queue) removeFiles(m *message) {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	if m.gone {
		return
	}
	m.gone = true
	if err := q.spool.remove(m.rec.ID); err != nil {
		q.log.Error("queue: removing message", "id", m.rec.ID, "error", err)
	}
}
