package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
)

func TestDeliverOK(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := newScripted()
			ev := make(events, 100)
			q := startQueue(t, kind, d, Options{OnEvent: ev.on})
			e := env("alice@example.org", "bob@example.com")
			e.ID = "smtp-42"
			e.Size = 123
			e.Body = mailblocks.Body8BitMIME
			e.EnvelopeID = "envid-1"
			e.Recipients[0].Notify = []mailblocks.DSNNotify{mailblocks.NotifyFailure}
			e.Recipients[0].OriginalRecipient = "rfc822;bob@example.com"
			id := enqueue(t, q, e)
			assert.True(t, validID(id), id)

			got := d.next(t)
			assert.Equal(t, testBody, got.body)
			assert.Equal(t, "smtp-42", got.env.ID)
			assert.Equal(t, "alice@example.org", got.env.From)
			assert.Equal(t, int64(123), got.env.Size)
			assert.Equal(t, mailblocks.Body8BitMIME, got.env.Body)
			assert.Equal(t, "envid-1", got.env.EnvelopeID)
			assert.Equal(t, e.Recipients, got.env.Recipients)

			assert.Equal(t, Event{Kind: EventQueued, ID: id, Recipient: "bob@example.com", Domain: "example.com"}, withoutTime(ev.next(t)))
			assert.Equal(t, Event{Kind: EventDelivered, ID: id, Recipient: "bob@example.com", Domain: "example.com"}, withoutTime(ev.next(t)))
			waitEmpty(t, q)
			_, err := q.Get(context.Background(), id)
			assert.ErrorIs(t, err, ErrNotFound)
		})
	}
}

func withoutTime(e Event) Event {
	e.Time = time.Time{}
	return e
}

func TestEnqueueRejects(t *testing.T) {
	q := NewMemory(newScripted(), Options{})
	defer q.Close()
	_, err := q.Enqueue(context.Background(), env("a@example.org"), strings.NewReader("x"))
	assert.Error(t, err)
	_, err = q.Enqueue(context.Background(), env("a@example.org", "nodomain"), strings.NewReader("x"))
	assert.ErrorIs(t, err, mailblocks.ErrBadDestinationSyntax)
	require.NoError(t, q.Close())
	_, err = q.Enqueue(context.Background(), env("a@example.org", "b@example.com"), strings.NewReader("x"))
	assert.ErrorIs(t, err, ErrClosed)
}

// TestTemporaryThenOK: a 4xx is retried after RetryInterval, and the listing
// shows the failure meanwhile.
func TestTemporaryThenOK(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clk := newFakeClock()
			d := newScripted().script("bob@example.com", err451, nil)
			ev := make(events, 100)
			q := startQueue(t, kind, d, Options{Clock: clk.Now, OnEvent: ev.on})
			t0 := clk.Now()
			id := enqueue(t, q, env("alice@example.org", "bob@example.com"))
			e := ev.nextKind(t, EventDeferred)
			assert.Equal(t, err451, e.Err)

			ent, err := q.Get(context.Background(), id)
			require.NoError(t, err)
			assert.Equal(t, 1, ent.Attempts)
			assert.Equal(t, t0.Add(5*time.Minute), ent.NextAttempt)
			require.NotNil(t, ent.LastError)
			assert.Equal(t, 451, ent.LastError.Code)
			assert.Equal(t, mailblocks.EnhancedCode{4, 4, 1}, ent.LastError.Enhanced)
			assert.Equal(t, "Try again later", ent.LastError.Message)
			assert.Equal(t, StatePending, ent.Recipients[0].State)
			assert.Equal(t, "mx.example.net", ent.Recipients[0].RemoteHost)

			// Not due yet: a wake-up must not deliver.
			clk.Advance(4 * time.Minute)
			q.Wake()
			clk.Advance(time.Minute)
			q.Wake()
			ev.nextKind(t, EventDelivered)
			assert.Len(t, d.all, 2)
			assert.Equal(t, t0.Add(5*time.Minute), clk.Now())
			waitEmpty(t, q)
		})
	}
}

// TestBackoff: the retry interval doubles from RetryInterval up to
// MaxRetryInterval, and the last attempt happens at MaxQueueTime.
func TestBackoff(t *testing.T) {
	q := NewMemory(nil, Options{})
	defer q.Close()
	want := []time.Duration{5, 10, 20, 40, 60, 60, 60}
	for i, w := range want {
		assert.Equal(t, w*time.Minute, q.backoff(i+1), "attempt %d", i+1)
	}
	q2 := NewMemory(nil, Options{RetryInterval: 300 * time.Second, MaxRetryInterval: 4000 * time.Second})
	defer q2.Close()
	assert.Equal(t, 4000*time.Second, q2.backoff(10))
	assert.Equal(t, 4000*time.Second, q2.backoff(1000)) // no overflow
}

// TestExpiry: a recipient that always gets 4xx gets one delay notice after
// DelayWarning, then a failure notice at MaxQueueTime.
func TestExpiry(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clk := newFakeClock()
			d := newScripted().script("bob@example.com", err451)
			ev := make(events, 1000)
			n := make(notices, 10)
			q := startQueue(t, kind, d, Options{Clock: clk.Now, OnEvent: ev.on, Bounce: n.handler(), Hostname: "mta.example.org"})
			t0 := clk.Now()
			id := enqueue(t, q, env("alice@example.org", "bob@example.com"))
			deferred := 0
			for {
				e := ev.next(t)
				if e.Kind == EventQueued {
					continue
				}
				if e.Kind == EventExpired {
					break
				}
				require.Equal(t, EventDeferred, e.Kind)
				deferred++
				ent, err := q.Get(context.Background(), id)
				require.NoError(t, err)
				require.False(t, ent.NextAttempt.IsZero())
				// Jump to the next attempt (never back: it may be due already).
				if d := ent.NextAttempt.Sub(clk.Now()); d > 0 {
					clk.Advance(d)
				}
				q.Wake()
			}
			assert.Equal(t, t0.Add(5*24*time.Hour), clk.Now(), "the last attempt is at expiry")
			// 5+10+20+40 minutes, then hourly for the rest of 5 days.
			assert.Equal(t, 4+(5*24*60-75)/60+1, deferred)

			delay := n.next(t)
			assert.Equal(t, "", delay.env.From)
			assert.Equal(t, "alice@example.org", delay.env.Recipients[0].Address)
			r := parseDSN(t, delay.body)
			assert.Equal(t, "Delayed Mail (still being retried)", r.header.Get("Subject"))
			require.Len(t, r.rcpts, 1)
			assert.Equal(t, "delayed", r.rcpts[0].Get("Action"))
			assert.Equal(t, "4.4.1", r.rcpts[0].Get("Status"))
			assert.Equal(t, t0.Add(5*24*time.Hour).Format(dateFormat), r.rcpts[0].Get("Will-Retry-Until"))

			bounce := n.next(t)
			r = parseDSN(t, bounce.body)
			assert.Equal(t, "Undelivered Mail Returned to Sender", r.header.Get("Subject"))
			assert.Equal(t, "failed", r.rcpts[0].Get("Action"))
			assert.Equal(t, "4.4.1", r.rcpts[0].Get("Status"))
			assert.Equal(t, "smtp; 451 4.4.1 Try again later", r.rcpts[0].Get("Diagnostic-Code"))
			waitEmpty(t, q)
			select {
			case x := <-n:
				t.Fatalf("unexpected third notice: %s", x.body)
			default:
			}
		})
	}
}

// TestClassification: how a Deliverer's result decides between delivered,
// retry and bounce.
func TestClassification(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want EventKind
	}{
		{"accepted", nil, EventDelivered},
		{"550 permanent", err550, EventBounced},
		{"554 wrapped", fmt.Errorf("smtpclient: RCPT: %w", mailblocks.NewError(554, mailblocks.EnhancedCode{5, 7, 1}, "denied")), EventBounced},
		{"552 without enhanced code", &mailblocks.Error{Code: 552, Message: "too big"}, EventBounced},
		{"451 temporary", err451, EventDeferred},
		{"421 service closing", mailblocks.NewError(421, mailblocks.EnhancedCode{4, 7, 0}, "bye"), EventDeferred},
		{"ErrTemporary", mailblocks.ErrTemporary, EventDeferred},
		{"error without code", errNet, EventDeferred},
		{"context deadline", context.DeadlineExceeded, EventDeferred},
		{"wrapped net error", fmt.Errorf("smtpclient: %w", errNet), EventDeferred},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := make(events, 10)
			d := newScripted().script("bob@example.com", tt.err)
			q := startQueue(t, "memory", d, Options{OnEvent: ev.on, Bounce: make(notices, 10).handler()})
			enqueue(t, q, env("alice@example.org", "bob@example.com"))
			assert.Equal(t, EventQueued, ev.next(t).Kind)
			assert.Equal(t, tt.want, ev.next(t).Kind)
		})
	}
}

// TestPerDomain: recipients are delivered per domain, and a domain's
// failure does not hold back the others.
func TestPerDomain(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clk := newFakeClock()
			d := newScripted().script("c@slow.example", err451, nil)
			ev := make(events, 100)
			q := startQueue(t, kind, d, Options{Clock: clk.Now, OnEvent: ev.on})
			id := enqueue(t, q, env("alice@example.org", "a@fast.example", "c@slow.example", "b@FAST.example"))
			var calls [][]string
			calls = append(calls, d.next(t).rcpts(), d.next(t).rcpts())
			slices.SortFunc(calls, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
			assert.Equal(t, [][]string{{"a@fast.example", "b@FAST.example"}, {"c@slow.example"}}, calls)

			ev.nextKind(t, EventDeferred)
			require.Eventually(t, func() bool {
				ent, err := q.Get(context.Background(), id)
				return err == nil && !ent.NextAttempt.IsZero() &&
					ent.Recipients[0].State == StateDelivered && ent.Recipients[2].State == StateDelivered
			}, waitTimeout, time.Millisecond)
			ent, err := q.Get(context.Background(), id)
			require.NoError(t, err)
			assert.Equal(t, StatePending, ent.Recipients[1].State)

			clk.Advance(5 * time.Minute)
			q.Wake()
			assert.Equal(t, []string{"c@slow.example"}, d.next(t).rcpts())
			waitEmpty(t, q)
		})
	}
}

// TestConcurrencyLimits: never more deliveries in flight than the limits,
// and a delivery goroutine takes several messages for its domain in a row.
func TestConcurrencyLimits(t *testing.T) {
	var mu sync.Mutex
	inflight := map[string]int{}
	total, maxTotal := 0, 0
	maxDomain := map[string]int{}
	d := newScripted()
	d.gate = func(env *mailblocks.Envelope) {
		dom := mailblocks.DomainOf(env.Recipients[0].Address)
		mu.Lock()
		inflight[dom]++
		total++
		maxTotal = max(maxTotal, total)
		maxDomain[dom] = max(maxDomain[dom], inflight[dom])
		mu.Unlock()
		// Give the scheduler every chance to start more than allowed.
		for range 3 {
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		inflight[dom]--
		total--
		mu.Unlock()
	}
	q := NewMemory(d, Options{Concurrency: 3, PerDomainConcurrency: 2, Logger: testLogger(t)})
	defer q.Close()
	// Enqueued before Start: everything is due at the first dispatch.
	for i := range 30 {
		enqueue(t, q, env("alice@example.org", fmt.Sprintf("u%d@d%d.example", i, i%3)))
	}
	enqueue(t, q, env("alice@example.org", "x@solo.example"))
	q.Start(context.Background())
	for range 31 {
		d.next(t)
	}
	waitEmpty(t, q)
	mu.Lock()
	defer mu.Unlock()
	assert.LessOrEqual(t, maxTotal, 3)
	for dom, n := range maxDomain {
		assert.LessOrEqual(t, n, 2, dom)
	}
}

// TestBatchSameDomain: the Deliverer sees consecutive calls for one domain
// from the same goroutine (so it can reuse a connection).
func TestBatchSameDomain(t *testing.T) {
	d := newScripted()
	var mu sync.Mutex
	order := []string{}
	d.gate = func(env *mailblocks.Envelope) {
		mu.Lock()
		order = append(order, mailblocks.DomainOf(env.Recipients[0].Address))
		mu.Unlock()
	}
	q := NewMemory(d, Options{Concurrency: 1, Batch: 3, Logger: testLogger(t)})
	defer q.Close()
	for i := range 4 {
		enqueue(t, q, env("alice@example.org", fmt.Sprintf("u%d@a.example", i)))
		enqueue(t, q, env("alice@example.org", fmt.Sprintf("u%d@b.example", i)))
	}
	q.Start(context.Background())
	for range 8 {
		d.next(t)
	}
	mu.Lock()
	defer mu.Unlock()
	// One slot, batches of 3, domains served in turn.
	assert.Equal(t, []string{"a.example", "a.example", "a.example", "b.example", "b.example", "b.example", "a.example", "b.example"}, order)
}

func TestDelivererMissingStatuses(t *testing.T) {
	ev := make(events, 10)
	d := DeliverFunc(func(ctx context.Context, env *mailblocks.Envelope, _ ioReaderAt, _ int64) []mailblocks.DeliveryStatus {
		return nil
	})
	q := startQueue(t, "memory", d, Options{OnEvent: ev.on})
	enqueue(t, q, env("alice@example.org", "bob@example.com"))
	e := ev.nextKind(t, EventDeferred)
	assert.True(t, errors.Is(e.Err, errNoStatus))
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	r.n--
	return copy(p, "partial data "), nil
}

// TestEnqueueBodyError: a body that cannot be read leaves nothing behind.
func TestEnqueueBodyError(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			q := openKind(t, kind, dir, newScripted(), Options{})
			defer q.Close()
			_, err := q.Enqueue(context.Background(), env("a@example.org", "b@example.com"), &failingReader{n: 3})
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err = q.Enqueue(ctx, env("a@example.org", "b@example.com"), strings.NewReader("x"))
			assert.ErrorIs(t, err, context.Canceled)
			l, err := q.List(context.Background())
			require.NoError(t, err)
			assert.Empty(t, l)
			if kind == "file" {
				for _, sub := range []string{"tmp", "msg"} {
					ents, err := os.ReadDir(filepath.Join(dir, sub))
					require.NoError(t, err)
					assert.Empty(t, ents, sub)
				}
			}
		})
	}
}

// TestDeadDestination: when a domain cannot be reached at all, its other
// messages wait for the retry instead of each trying in turn; other
// domains go on.
func TestDeadDestination(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	ev := make(events, 100)
	d := newScripted().script("u0@dead.example", errNet, nil)
	q := openKind(t, "file", t.TempDir(), d, Options{Clock: clk.Now, OnEvent: ev.on, PerDomainConcurrency: 1})
	defer q.Close()
	var ids []string
	for i := range 3 {
		ids = append(ids, enqueue(t, q, env("alice@example.org", fmt.Sprintf("u%d@dead.example", i))))
	}
	q.Start(ctx)
	assert.Equal(t, []string{"u0@dead.example"}, d.next(t).rcpts())
	ev.nextKind(t, EventDeferred)
	// Another domain is not affected.
	enqueue(t, q, env("alice@example.org", "x@live.example"))
	assert.Equal(t, []string{"x@live.example"}, d.next(t).rcpts())
	for _, id := range ids[1:] {
		e, err := q.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, 0, e.Recipients[0].Attempts, "not tried while the destination is dead")
		assert.False(t, e.Delivering)
	}
	clk.Advance(5 * time.Minute)
	q.Wake()
	got := []string{}
	for range 3 {
		got = append(got, d.next(t).rcpts()...)
	}
	slices.Sort(got)
	assert.Equal(t, []string{"u0@dead.example", "u1@dead.example", "u2@dead.example"}, got)
	waitEmpty(t, q)
}
