package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/internal/testutil"
)

// flakyBounce is a BounceHandler playing a script of outcomes, one per
// call, the last one repeating (none: every call succeeds). Each call is
// recorded with the time of the queue's clock.
type flakyBounce struct {
	clk   *testutil.Clock
	mu    sync.Mutex
	errs  []error
	calls chan bounceCall
}

type bounceCall struct {
	at   time.Time
	body string
	err  error
}

func newFlakyBounce(clk *testutil.Clock, errs ...error) *flakyBounce {
	return &flakyBounce{clk: clk, errs: errs, calls: make(chan bounceCall, 100)}
}

func (f *flakyBounce) HandleBounce(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if len(f.errs) > 0 {
		err = f.errs[0]
		if len(f.errs) > 1 {
			f.errs = f.errs[1:]
		}
	}
	f.mu.Unlock()
	f.calls <- bounceCall{at: f.clk.Now(), body: string(b), err: err}
	return err
}

func (f *flakyBounce) next(t *testing.T) bounceCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a notice hand-off")
	}
	return bounceCall{}
}

// errHandoff is a temporary hand-off failure (no SMTP code).
var errHandoff = fmt.Errorf("mailbox store unavailable: %w", io.ErrClosedPipe)

// waitNoticeRetry waits until message id's notice retry is set to at.
func waitNoticeRetry(t *testing.T, q *Queue, id string, at time.Time) {
	t.Helper()
	require.Eventually(t, func() bool {
		e, err := q.Get(context.Background(), id)
		return err == nil && e.NoticeRetry.Equal(at)
	}, waitTimeout, time.Millisecond, "notice retry at %v", at)
}

func bufferLogger(buf *testutil.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestNoticeRetry: a bounce whose hand-off fails stays owed, on disk, and is
// retried with the deliveries' backoff, across a restart.
func TestNoticeRetry(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	t0 := clk.Now()
	opts := Options{Clock: clk.Now, RetryInterval: 10 * time.Minute, MaxRetryInterval: time.Hour}

	// First run: the bounce cannot be handed over.
	fb := newFlakyBounce(clk, errHandoff)
	opts.Bounce, opts.Logger = fb, testLogger(t)
	q := openKind(t, "file", dir, newScripted().script("bob@example.com", err550), opts)
	id := enqueue(t, q, env("alice@example.org", "bob@example.com"))
	q.Start(context.Background())
	c := fb.next(t)
	assert.Equal(t, t0, c.at)
	assert.ErrorIs(t, c.err, io.ErrClosedPipe)
	waitNoticeRetry(t, q, id, t0.Add(10*time.Minute))
	e, err := q.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, StateFailed, e.Recipients[0].State, "nothing left to deliver, only the notice")
	require.NoError(t, q.Close())
	st, err := os.ReadFile(filepath.Join(dir, "msg", id+stateSuffix))
	require.NoError(t, err)
	assert.Contains(t, string(st), `"notice":1`)
	assert.Contains(t, string(st), `"ntries":1`)

	// Restart: the retry is not due yet. It fails once more, then the
	// handler takes it.
	fb = newFlakyBounce(clk, errHandoff, nil)
	opts.Bounce = fb
	q = openKind(t, "file", dir, newScripted(), opts)
	defer q.Close()
	l, err := q.List(context.Background())
	require.NoError(t, err)
	require.Len(t, l, 1)
	assert.Equal(t, t0.Add(10*time.Minute), l[0].NoticeRetry)
	assert.Empty(t, fb.calls, "loading does not retry before the retry is due")
	q.Start(context.Background())

	clk.Advance(10 * time.Minute)
	q.Wake()
	c = fb.next(t)
	assert.Equal(t, t0.Add(10*time.Minute), c.at)
	assert.Error(t, c.err)
	// The second failure waits twice as long.
	waitNoticeRetry(t, q, id, t0.Add(30*time.Minute))
	clk.Advance(20 * time.Minute)
	q.Wake()
	c = fb.next(t)
	assert.Equal(t, t0.Add(30*time.Minute), c.at)
	require.NoError(t, c.err)
	r := parseDSN(t, c.body)
	require.Len(t, r.rcpts, 1)
	assert.Equal(t, "failed", r.rcpts[0].Get("Action"))
	assert.Equal(t, "rfc822; bob@example.com", r.rcpts[0].Get("Final-Recipient"))
	waitEmpty(t, q)
	require.NoError(t, q.Close())
	ents, err := os.ReadDir(filepath.Join(dir, "msg"))
	require.NoError(t, err)
	assert.Empty(t, ents, "the message's files are removed once the notice is handed over")
	assert.Empty(t, fb.calls)
}

// TestNoticeRetryExpires: a notice that keeps failing is retried until
// MaxQueueTime after its first failure, then logged and dropped.
func TestNoticeRetryExpires(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clk := newFakeClock()
			t0 := clk.Now()
			fb := newFlakyBounce(clk, errHandoff)
			var logs testutil.Buffer
			q := startQueue(t, kind, newScripted().script("bob@example.com", err550), Options{
				Clock: clk.Now, Bounce: fb, Logger: bufferLogger(&logs),
				RetryInterval: 10 * time.Minute, MaxRetryInterval: 20 * time.Minute, MaxQueueTime: time.Hour,
			})
			id := enqueue(t, q, env("alice@example.org", "bob@example.com"))
			// 10 min, doubling, capped at 20 min, the last one at
			// the expiry.
			want := []time.Duration{0, 10 * time.Minute, 30 * time.Minute, 50 * time.Minute, time.Hour}
			for i, off := range want {
				c := fb.next(t)
				assert.Equal(t, t0.Add(off), c.at, "attempt %d", i+1)
				if i == len(want)-1 {
					break
				}
				next := t0.Add(want[i+1])
				waitNoticeRetry(t, q, id, next)
				clk.Advance(next.Sub(clk.Now()))
				q.Wake()
			}
			waitEmpty(t, q)
			assert.Empty(t, fb.calls)
			assert.Contains(t, logs.String(), "level=ERROR msg=\"queue: delivery status notification still failing after the maximal queue time, dropped\"")
			assert.Contains(t, logs.String(), "attempts=5")
		})
	}
}

// TestNoticeRefused: a permanent refusal (5xx) is not retried.
func TestNoticeRefused(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clk := newFakeClock()
			refused := fmt.Errorf("deliver bounce: %w", mailblocks.NewError(550, mailblocks.EnhancedCode{5, 1, 1}, "No such user: alice"))
			fb := newFlakyBounce(clk, refused)
			var logs testutil.Buffer
			q := startQueue(t, kind, newScripted().script("bob@example.com", err550), Options{
				Clock: clk.Now, Bounce: fb, Logger: bufferLogger(&logs),
			})
			enqueue(t, q, env("alice@example.org", "bob@example.com"))
			assert.Equal(t, refused, fb.next(t).err)
			waitEmpty(t, q)
			assert.Empty(t, fb.calls, "one attempt only")
			assert.Contains(t, logs.String(), "level=ERROR msg=\"queue: delivery status notification refused, dropped\"")
			assert.Contains(t, logs.String(), "No such user: alice")
		})
	}
}

// TestNoticeRetryAdmin: Retry makes a failed notice due now; Delete drops
// it.
func TestNoticeRetryAdmin(t *testing.T) {
	clk := newFakeClock()
	fb := newFlakyBounce(clk, errHandoff, errHandoff, nil)
	q := startQueue(t, "file", newScripted().script("bob@example.com", err550).script("carol@example.net", err550), Options{
		Clock: clk.Now, Bounce: fb, Logger: testLogger(t), RetryInterval: time.Hour,
	})
	id1 := enqueue(t, q, env("alice@example.org", "bob@example.com"))
	fb.next(t)
	waitNoticeRetry(t, q, id1, clk.Now().Add(time.Hour))
	id2 := enqueue(t, q, env("alice@example.org", "carol@example.net"))
	fb.next(t)
	waitNoticeRetry(t, q, id2, clk.Now().Add(time.Hour))

	require.NoError(t, q.Delete(context.Background(), id2))
	require.NoError(t, q.Retry(context.Background(), id1))
	c := fb.next(t)
	require.NoError(t, c.err)
	assert.Contains(t, c.body, "bob@example.com")
	waitEmpty(t, q)
	assert.Empty(t, fb.calls)
	assert.False(t, strings.Contains(c.body, "carol@example.net"))
}
