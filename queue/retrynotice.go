package queue

// Notices (bounces, delay and success DSNs) are acknowledged mail too: a
// notice whose hand-off to Options.Bounce fails is not dropped. Its mark
// (rcptState.Notice) stays in the message's record, and so on disk, and the
// message stays in the queue, even with no recipient left to deliver to,
// until the notice is handed over, refused for good, or has failed for
// MaxQueueTime (flushNotices). The retry is a job of its own in the
// scheduler, under the pseudo-domain noticeDomain: it waits in the heap
// until rec.NoticeNext, takes a delivery slot like any job (so at most
// Options.PerDomainConcurrency hand-offs are retried at once), and is
// rescheduled from the record after a restart. A crash during a hand-off
// that follows the message's last delivery finds the state saved before
// that delivery: the recipients are tried again and the notice follows.
// Hold does not stop it (it holds deliveries, and the notice concerns
// deliveries already done).

// noticeDomain is the ready-list key of notice jobs: no recipient domain
// contains a space (Enqueue checks them).
const noticeDomain = " notices"

// settle is called when something happened to m (a delivery ended, a
// notice retry is due, m was loaded): it sends m's owed notices when no
// delivery of m is in flight (the last one to end does it, so that a
// message gets one notice for all its domains), then removes m when nothing
// is left to do, or saves it (when dirty, or when the notices changed it)
// and schedules the retry of notices that could not be handed over.
// onlyDue leaves notices whose retry is not due yet to the scheduler.
func (q *Queue) settle(m *message, dirty, onlyDue bool) {
	q.mu.Lock()
	flush := m.running == 0 && !m.deleted && m.owesNotice() &&
		(!onlyDue || !m.rec.NoticeNext.After(q.opts.Clock()))
	q.mu.Unlock()
	// Notices are sent before the message is removed: they may quote it.
	if flush && q.flushNotices(m) {
		dirty = true
	}

	q.mu.Lock()
	if m.deleted {
		// Delete removed the files unless a delivery was in flight;
		// the last one to end removes them.
		remove := m.running == 0
		q.mu.Unlock()
		if remove {
			q.removeFiles(m)
		}
		return
	}
	done := len(m.jobs) == 0 && !m.owesNotice()
	if done {
		if q.sched.msgs[m.rec.ID] == m {
			delete(q.sched.msgs, m.rec.ID)
		}
		q.unscheduleNoticeLocked(m)
	} else if m.running == 0 && m.owesNotice() {
		// With a delivery in flight, its end settles m again.
		q.scheduleNoticeLocked(m)
	}
	q.mu.Unlock()
	switch {
	case done:
		q.removeFiles(m)
	case dirty:
		q.persist(m)
	}
}

// scheduleNoticeLocked (re)schedules m's notice job at rec.NoticeNext.
func (q *Queue) scheduleNoticeLocked(m *message) {
	j := m.noticeJob
	if j == nil {
		j = &job{m: m, domain: noticeDomain, idx: -1, notice: true}
		m.noticeJob = j
	}
	q.scheduleLocked(j, m.rec.NoticeNext)
}

func (q *Queue) unscheduleNoticeLocked(m *message) {
	if j := m.noticeJob; j != nil {
		q.unscheduleLocked(j, jobRemoved)
		m.noticeJob = nil
	}
}

// runNoticeJob is a notice retry that came due.
func (q *Queue) runNoticeJob(j *job) {
	m := j.m
	q.mu.Lock()
	// Detached first: settle schedules a new job if the notices still
	// fail.
	if m.noticeJob == j {
		m.noticeJob = nil
	}
	j.state = jobRemoved
	q.mu.Unlock()
	q.settle(m, false, false)
}
