package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailblocks/mailblocks"
)

// Deliverer hands a message to the next hop. body can be read many times
// (io.NewSectionReader(body, 0, size)). The result has one entry per
// recipient of env, in order.
//
// The queue calls Deliver with the recipients of one destination domain
// (mailblocks.DomainOf) per call, and calls it for several messages to the
// same domain in a row from the same goroutine, so an implementation that
// caches connections per destination reuses them.
type Deliverer interface {
	Deliver(ctx context.Context, env *mailblocks.Envelope, body io.ReaderAt, size int64) []mailblocks.DeliveryStatus
}

// DeliverFunc adapts a function to a Deliverer.
type DeliverFunc func(ctx context.Context, env *mailblocks.Envelope, body io.ReaderAt, size int64) []mailblocks.DeliveryStatus

// Deliver calls f.
func (f DeliverFunc) Deliver(ctx context.Context, env *mailblocks.Envelope, body io.ReaderAt, size int64) []mailblocks.DeliveryStatus {
	return f(ctx, env, body, size)
}

var _ Deliverer = DeliverFunc(nil)

// BounceHandler receives the delivery status notifications (RFC 3464) the
// queue generates: bounces, delay notices and success ("relayed") notices.
// env has the null reverse-path and one recipient; body is the complete
// multipart/report message. Returning nil means the notice is in safe hands.
type BounceHandler interface {
	HandleBounce(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error
}

// BounceFunc adapts a function to a BounceHandler.
type BounceFunc func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error

// HandleBounce calls f.
func (f BounceFunc) HandleBounce(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	return f(ctx, env, body)
}

var _ BounceHandler = BounceFunc(nil)

// Options configure a Queue. The zero value works; the retry defaults are
// close to Postfix's.
type Options struct {
	// Hostname names this MTA in DSNs (Reporting-MTA, the From:
	// MAILER-DAEMON@Hostname header, Message-ID). Default "localhost".
	Hostname string
	// Postmaster receives the bounce of a message that had the null
	// sender (a failed bounce), RFC 5321 4.5.5 / 6.1. Empty: such
	// failures are logged and dropped.
	Postmaster string
	// ReturnSizeLimit is the largest message returned whole in a DSN when
	// the sender asked for RET=FULL; a larger one is returned as headers
	// only, so that the notice itself is not refused for its size.
	// Default 10 MiB (Postfix truncates at bounce_size_limit, 50 kB).
	ReturnSizeLimit int64
	// Bounce receives the DSNs. Default: they are enqueued in this queue
	// (and so relayed by the Deliverer like any other message).
	Bounce BounceHandler

	// RetryInterval is the wait before the first retry after a temporary
	// failure; it doubles at each further failure up to MaxRetryInterval.
	// Default 5 minutes (Postfix minimal_backoff_time 300s).
	RetryInterval time.Duration
	// MaxRetryInterval caps the backoff. Default 1 hour (Postfix's
	// maximal_backoff_time is 4000s).
	MaxRetryInterval time.Duration
	// MaxQueueTime is how long a recipient is retried before it expires
	// and bounces. Default 5 days (Postfix maximal_queue_lifetime).
	MaxQueueTime time.Duration
	// DelayWarning is the age after which a still-deferred recipient that
	// asked for NOTIFY=DELAY (or gave no NOTIFY, RFC 3461 4.1) gets one
	// delay notice. Default 4 hours; negative disables delay notices.
	DelayWarning time.Duration

	// Concurrency is the maximum number of deliveries in progress.
	// Default 20.
	Concurrency int
	// PerDomainConcurrency is the maximum number of deliveries in
	// progress to one destination domain. Default 5 (Postfix starts a
	// destination at initial_destination_concurrency 5 and lets it grow
	// to default_destination_concurrency_limit 20).
	PerDomainConcurrency int
	// Batch is how many messages a delivery goroutine delivers to the
	// same domain, one after the other, before it lets other domains
	// have its slot: the Deliverer can reuse one connection for them.
	// Default 50.
	Batch int

	// Clock returns the current time. Default time.Now. With a fake clock
	// call Wake after moving it so the scheduler looks again.
	Clock func() time.Time
	// OnEvent is called for each recipient that is queued, delivered,
	// deferred, bounced or expired. It is called synchronously from the
	// queue's goroutines and must not block. Default none.
	OnEvent func(Event)
	// Logger receives the queue's logs. Default: discarded.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.ReturnSizeLimit <= 0 {
		o.ReturnSizeLimit = 10 << 20
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 5 * time.Minute
	}
	if o.MaxRetryInterval <= 0 {
		o.MaxRetryInterval = time.Hour
	}
	if o.MaxRetryInterval < o.RetryInterval {
		o.MaxRetryInterval = o.RetryInterval
	}
	if o.MaxQueueTime <= 0 {
		o.MaxQueueTime = 5 * 24 * time.Hour
	}
	if o.DelayWarning == 0 {
		o.DelayWarning = 4 * time.Hour
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 20
	}
	if o.PerDomainConcurrency <= 0 {
		o.PerDomainConcurrency = 5
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// EventKind says what happened to a recipient.
type EventKind int

const (
	EventQueued    EventKind = iota + 1 // accepted by Enqueue
	EventDelivered                      // accepted by the next hop
	EventDeferred                       // temporary failure, will retry
	EventBounced                        // permanent failure
	EventExpired                        // still failing after MaxQueueTime
)

// String returns the kind's name as used in logs ("queued", "delivered"...).
func (k EventKind) String() string {
	switch k {
	case EventQueued:
		return "queued"
	case EventDelivered:
		return "delivered"
	case EventDeferred:
		return "deferred"
	case EventBounced:
		return "bounced"
	case EventExpired:
		return "expired"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports progress of one recipient, for statistics.
type Event struct {
	Kind      EventKind
	ID        string // queue ID
	Recipient string
	Domain    string
	Err       error // the failure, for deferred, bounced and expired
	Time      time.Time
}

// Errors.
var (
	// ErrNotFound: no message with that ID in the queue.
	ErrNotFound = errors.New("queue: message not found")
	// ErrClosed: the queue was closed.
	ErrClosed = errors.New("queue: closed")
)

// Queue is a durable outbound mail queue. Enqueue stores messages; once
// started (Run or Start) it delivers them through its Deliverer, retrying
// temporary failures and bouncing permanent ones. It is safe for concurrent
// use.
type Queue struct {
	opts  Options
	d     Deliverer
	spool spool
	log   *slog.Logger

	ctx    context.Context // cancelled by Close: in-flight deliveries stop
	cancel context.CancelFunc
	loaded chan struct{} // closed when the previous run's messages are in

	wake chan struct{}

	mu       sync.Mutex
	closed   bool
	running  bool
	stopping bool // no new deliveries (Shutdown in progress)
	sched    scheduler
	enqueues sync.WaitGroup // Enqueue calls in progress
	workers  sync.WaitGroup // delivery goroutines
	bg       sync.WaitGroup // loader, Run
}

// Open opens (creating it if needed) the durable queue in dir. Messages left
// by a previous run are loaded in the background and delivered once the
// queue is started; files that were being written when the previous run
// stopped are deleted, unreadable ones moved to dir/quarantine.
func Open(dir string, d Deliverer, opts Options) (*Queue, error) {
	opts = opts.withDefaults()
	sp, err := openFileSpool(dir, opts.Logger)
	if err != nil {
		return nil, err
	}
	return newQueue(sp, d, opts), nil
}

// NewMemory returns a queue that behaves as Open's but keeps everything in
// memory: its content is lost when the process exits.
func NewMemory(d Deliverer, opts Options) *Queue {
	return newQueue(newMemSpool(), d, opts.withDefaults())
}

func newQueue(sp spool, d Deliverer, opts Options) *Queue {
	q := &Queue{
		opts:   opts,
		d:      d,
		spool:  sp,
		log:    opts.Logger,
		loaded: make(chan struct{}),
		wake:   make(chan struct{}, 1),
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	q.sched.init()
	q.bg.Add(1)
	go func() {
		defer q.bg.Done()
		defer close(q.loaded)
		var n atomic.Int64
		err := sp.load(q.ctx, func(recs []*record) {
			var finished, owing []*message
			q.mu.Lock()
			for _, rec := range recs {
				m, indexed := q.addLocked(rec)
				if !indexed {
					finished = append(finished, m)
				} else if m.owesNotice() {
					owing = append(owing, m)
				}
			}
			q.mu.Unlock()
			q.Wake()
			n.Add(int64(len(recs) - len(finished)))
			// Notices not handed over before the previous run
			// stopped: sent now, or scheduled when their hand-off
			// had failed and its retry is not due yet.
			for _, m := range owing {
				q.settle(m, false, true)
			}
			for _, m := range finished {
				// Finished before the crash, not yet removed.
				q.removeFiles(m)
			}
		})
		if err != nil && q.ctx.Err() == nil {
			q.log.Error("queue: loading spool", "error", err)
		}
		if n.Load() > 0 {
			q.log.Info("queue: loaded messages from spool", "count", n.Load())
		}
	}()
	return q
}

// Enqueue stores the message with envelope env and content body. When it
// returns a nil error the message is durable (on disk and fsynced for a
// queue from Open) and will be delivered. id is the queue ID used by the
// administration methods; env.ID, when empty, is set to it in the envelope
// handed to the Deliverer.
func (q *Queue) Enqueue(ctx context.Context, env *mailblocks.Envelope, body io.Reader) (id string, err error) {
	return q.enqueue(ctx, env, body, false)
}

// enqueue is Enqueue; internal is set for the queue's own notices, which
// are accepted while Close waits for the last deliveries.
func (q *Queue) enqueue(ctx context.Context, env *mailblocks.Envelope, body io.Reader, internal bool) (id string, err error) {
	if len(env.Recipients) == 0 {
		return "", errors.New("queue: enqueue: no recipients")
	}
	for _, r := range env.Recipients {
		if mailblocks.DomainOf(r.Address) == "" {
			return "", fmt.Errorf("queue: enqueue: recipient %q: %w", r.Address, mailblocks.ErrBadDestinationSyntax)
		}
	}
	q.mu.Lock()
	if q.closed && !internal {
		q.mu.Unlock()
		return "", ErrClosed
	}
	q.enqueues.Add(1)
	q.mu.Unlock()
	defer q.enqueues.Done()

	rec := newRecord(newID(), env, q.opts.Clock())
	if err := q.spool.create(ctx, rec, body); err != nil {
		return "", err
	}
	id, created := rec.ID, rec.Created
	for _, r := range env.Recipients {
		q.emit(Event{Kind: EventQueued, ID: id, Recipient: r.Address, Domain: mailblocks.DomainOf(r.Address), Time: created})
	}
	q.mu.Lock()
	q.addLocked(rec)
	q.mu.Unlock()
	q.Wake()
	return id, nil
}

// Wake makes the scheduler look at the queue again now. It is never needed
// with the real clock; with a fake Options.Clock call it after moving the
// clock forward.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run delivers queued messages until ctx is done or the queue is shut down,
// then waits for the deliveries in progress (their context is derived from
// ctx) and returns ctx.Err() (Run may then be called again) or ErrClosed.
func (q *Queue) Run(ctx context.Context) error {
	q.mu.Lock()
	if q.closed || q.stopping {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.running {
		q.mu.Unlock()
		return errors.New("queue: already running")
	}
	if q.d == nil {
		q.mu.Unlock()
		return errors.New("queue: no Deliverer")
	}
	q.running = true
	q.bg.Add(1)
	q.mu.Unlock()
	defer q.bg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(q.ctx, cancel)
	defer stop()
	q.loop(ctx)
	q.mu.Lock()
	stopping := q.stopping
	q.stopping = true // no new deliveries while the last ones end
	q.mu.Unlock()
	q.workers.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || stopping {
		return ErrClosed
	}
	// Only ctx ended: Run may be called again.
	q.stopping = false
	q.running = false
	return ctx.Err()
}

// Start runs Run in a goroutine.
func (q *Queue) Start(ctx context.Context) {
	go func() {
		if err := q.Run(ctx); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
			q.log.Error("queue: scheduler stopped", "error", err)
		}
	}()
}

// Shutdown stops starting deliveries, waits for those in progress to finish
// and closes the queue. When ctx is done first, the deliveries in progress
// are cancelled (and their recipients deferred), and Shutdown returns
// ctx.Err() once they have returned.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.stopping = true
	q.mu.Unlock()
	q.Wake()

	idle := make(chan struct{})
	go func() { q.workers.Wait(); close(idle) }()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
	}
	q.closeNow()
	return err
}

// Close cancels the deliveries in progress, waits for them to return and
// closes the queue. Messages not delivered stay in the spool.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.stopping = true
	q.mu.Unlock()
	q.closeNow()
	return nil
}

func (q *Queue) closeNow() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cancel()
	q.Wake()
	q.workers.Wait()
	q.bg.Wait()
	q.enqueues.Wait()
	// Bounces handed to this queue by the last deliveries are in; now
	// nothing can reach the spool.
	if err := q.spool.close(); err != nil {
		q.log.Error("queue: close spool", "error", err)
	}
}

func (q *Queue) emit(ev Event) {
	if q.opts.OnEvent != nil {
		q.opts.OnEvent(ev)
	}
}
