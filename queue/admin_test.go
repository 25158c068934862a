package queue

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
)

func TestAdmin(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			clk := newFakeClock()
			ev := make(events, 100)
			d := newScripted().script("b@x.example", err451).script("c@y.example", errNet)
			q := openKind(t, kind, t.TempDir(), d, Options{Clock: clk.Now, OnEvent: ev.on})
			defer q.Close()
			t0 := clk.Now()
			id1 := enqueue(t, q, env("alice@example.org", "b@x.example"))
			clk.Advance(time.Second)
			t1 := clk.Now()
			id2 := enqueue(t, q, env("", "c@y.example", "ok@z.example"))
			q.Start(ctx)
			seen := map[EventKind]int{}
			for seen[EventDeferred]+seen[EventDelivered] < 3 {
				seen[ev.next(t).Kind]++
			}
			assert.Equal(t, map[EventKind]int{EventQueued: 3, EventDeferred: 2, EventDelivered: 1}, seen)
			for range 3 {
				d.next(t)
			}
			clk.Advance(time.Minute)

			l, err := q.List(ctx)
			require.NoError(t, err)
			require.Len(t, l, 2)
			assert.Equal(t, id1, l[0].ID)
			assert.Equal(t, id2, l[1].ID)
			e := l[0]
			assert.Equal(t, "alice@example.org", e.From)
			assert.Equal(t, int64(len(testBody)), e.Size)
			assert.Equal(t, t0, e.Created)
			assert.Equal(t, time.Minute+time.Second, e.Age)
			assert.Equal(t, 1, e.Attempts)
			assert.Equal(t, t1.Add(5*time.Minute), e.NextAttempt)
			assert.Equal(t, err451, e.LastError)
			assert.False(t, e.Held)
			require.Len(t, e.Recipients, 1)
			assert.Equal(t, RecipientStatus{
				Address: "b@x.example", State: StatePending, Attempts: 1, LastAttempt: t1,
				NextAttempt: t1.Add(5 * time.Minute), LastError: err451, RemoteHost: "mx.example.net",
			}, e.Recipients[0])
			e = l[1]
			assert.Equal(t, "", e.From)
			assert.Equal(t, StatePending, e.Recipients[0].State)
			assert.Equal(t, &mailblocks.Error{Message: errNet.Error()}, e.Recipients[0].LastError)
			assert.Equal(t, StateDelivered, e.Recipients[1].State)
			assert.Nil(t, e.Recipients[1].LastError)

			// Unknown IDs.
			for _, f := range []func(context.Context, string) error{q.Retry, q.Delete, q.Hold, q.Release} {
				assert.ErrorIs(t, f(ctx, "nosuchid"), ErrNotFound)
			}
			_, err = q.Get(ctx, "nosuchid")
			assert.ErrorIs(t, err, ErrNotFound)

			// Retry: due now.
			require.NoError(t, q.Retry(ctx, id1))
			assert.Equal(t, []string{"b@x.example"}, d.next(t).rcpts())
			ev.nextKind(t, EventDeferred)

			// Hold: Flush does not touch it; Release delivers it.
			require.NoError(t, q.Hold(ctx, id1))
			got, err := q.Get(ctx, id1)
			require.NoError(t, err)
			assert.True(t, got.Held)
			assert.True(t, got.NextAttempt.IsZero())
			d.script("b@x.example", nil)
			require.NoError(t, q.Flush(ctx))
			assert.Equal(t, []string{"c@y.example"}, d.next(t).rcpts())
			ev.nextKind(t, EventDeferred)
			require.NoError(t, q.Release(ctx, id1))
			assert.Equal(t, []string{"b@x.example"}, d.next(t).rcpts())
			ev.nextKind(t, EventDelivered)

			// Delete.
			require.Eventually(t, func() bool {
				_, err := q.Get(ctx, id1)
				return err == ErrNotFound
			}, waitTimeout, time.Millisecond)
			require.NoError(t, q.Delete(ctx, id2))
			assert.ErrorIs(t, q.Delete(ctx, id2), ErrNotFound)
			l, err = q.List(ctx)
			require.NoError(t, err)
			assert.Empty(t, l)
			require.NoError(t, q.Flush(ctx))
			if kind == "file" {
				assertSpoolEmpty(t, q)
			}
		})
	}
}

func assertSpoolEmpty(t *testing.T, q *Queue) {
	t.Helper()
	fs := q.spool.(*fileSpool)
	require.Eventually(t, func() bool {
		ents, err := os.ReadDir(fs.msgDir)
		return err == nil && len(ents) == 0
	}, waitTimeout, time.Millisecond)
}

func TestDeleteAll(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	d := newScripted()
	q := openKind(t, "file", t.TempDir(), d, Options{Clock: clk.Now})
	defer q.Close()
	for range 10 {
		enqueue(t, q, env("alice@example.org", "b@x.example", "c@y.example"))
	}
	id := enqueue(t, q, env("alice@example.org", "b@x.example"))
	require.NoError(t, q.Hold(ctx, id))
	l, err := q.List(ctx)
	require.NoError(t, err)
	assert.Len(t, l, 11)
	require.NoError(t, q.DeleteAll(ctx))
	l, err = q.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, l)
	assertSpoolEmpty(t, q)
	// Nothing is delivered once started.
	q.Start(ctx)
	enqueue(t, q, env("alice@example.org", "last@x.example"))
	assert.Equal(t, []string{"last@x.example"}, d.next(t).rcpts())
}

// TestDeleteWhileDelivering: the files go when the delivery returns, and
// the message is not rescheduled.
func TestDeleteWhileDelivering(t *testing.T) {
	ctx := context.Background()
	started := make(chan string, 1)
	release := make(chan struct{})
	d := newScripted().script("b@x.example", err451)
	d.gate = func(env *mailblocks.Envelope) {
		started <- env.ID
		<-release
	}
	ev := make(events, 10)
	q := startQueue(t, "file", d, Options{OnEvent: ev.on})
	id := enqueue(t, q, env("alice@example.org", "b@x.example"))
	<-started
	got, err := q.Get(ctx, id)
	require.NoError(t, err)
	assert.True(t, got.Delivering)
	require.NoError(t, q.Delete(ctx, id))
	fs := q.spool.(*fileSpool)
	_, err = os.Stat(filepath.Join(fs.msgDir, id))
	assert.NoError(t, err, "still there while the delivery runs")
	close(release)
	ev.nextKind(t, EventDeferred)
	assertSpoolEmpty(t, q)
	require.NoError(t, q.Flush(ctx))
	_, err = q.Get(ctx, id)
	assert.ErrorIs(t, err, ErrNotFound)
}

// TestShutdownWaits: Shutdown lets the delivery in progress finish.
func TestShutdownWaits(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	d := newScripted()
	d.gate = func(*mailblocks.Envelope) {
		close(started)
		<-release
	}
	ev := make(events, 10)
	q := openKind(t, "file", t.TempDir(), d, Options{OnEvent: ev.on})
	q.Start(context.Background())
	enqueue(t, q, env("alice@example.org", "b@x.example"))
	<-started
	done := make(chan error, 1)
	go func() { done <- q.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned before the delivery ended: %v", err)
	default:
	}
	close(release)
	require.NoError(t, <-done)
	ev.nextKind(t, EventDelivered)
	assert.ErrorIs(t, q.Close(), ErrClosed)
}

// TestShutdownTimeout: when its context ends, Shutdown cancels the
// deliveries in progress.
func TestShutdownTimeout(t *testing.T) {
	started := make(chan struct{}, 1)
	d := DeliverFunc(func(ctx context.Context, env *mailblocks.Envelope, _ ioReaderAt, _ int64) []mailblocks.DeliveryStatus {
		started <- struct{}{}
		<-ctx.Done()
		return []mailblocks.DeliveryStatus{{Recipient: env.Recipients[0].Address, Err: ctx.Err()}}
	})
	ev := make(events, 10)
	dir := t.TempDir()
	q := openKind(t, "file", dir, d, Options{OnEvent: ev.on})
	q.Start(context.Background())
	enqueue(t, q, env("alice@example.org", "b@x.example"))
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, q.Shutdown(ctx), context.Canceled)
	ev.nextKind(t, EventDeferred)
	// Still queued for next time.
	q2 := openKind(t, "file", dir, d, Options{})
	defer q2.Close()
	l, err := q2.List(context.Background())
	require.NoError(t, err)
	require.Len(t, l, 1)
	assert.Equal(t, 1, l[0].Attempts)
}

// TestRunAgain: Run returns when its context ends and can be called again.
func TestRunAgain(t *testing.T) {
	d := newScripted()
	q := NewMemory(d, Options{Logger: testLogger(t)})
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	enqueue(t, q, env("alice@example.org", "b@x.example"))
	d.next(t)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	enqueue(t, q, env("alice@example.org", "c@x.example"))
	go func() { done <- q.Run(context.Background()) }()
	assert.Equal(t, []string{"c@x.example"}, d.next(t).rcpts())
	require.NoError(t, q.Close())
	assert.ErrorIs(t, <-done, ErrClosed)
	assert.ErrorIs(t, q.Run(context.Background()), ErrClosed)
}

func TestRunWithoutDeliverer(t *testing.T) {
	q := NewMemory(nil, Options{})
	defer q.Close()
	assert.Error(t, q.Run(context.Background()))
}

func TestEventKindString(t *testing.T) {
	for k, want := range map[EventKind]string{
		EventQueued: "queued", EventDelivered: "delivered", EventDeferred: "deferred",
		EventBounced: "bounced", EventExpired: "expired", 42: "EventKind(42)",
	} {
		assert.Equal(t, want, k.String())
	}
}
