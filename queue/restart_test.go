package queue

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/internal/testutil"
)

// TestRestart: progress survives a restart; delivered recipients are not
// sent again, pending ones are.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := newFakeClock()
	ev := make(events, 100)
	d := newScripted().script("b@slow.example", err451)
	q := openKind(t, "file", dir, d, Options{Clock: clk.Now, OnEvent: ev.on})
	id := enqueue(t, q, env("alice@example.org", "a@fast.example", "b@slow.example"))
	held := enqueue(t, q, env("alice@example.org", "h@fast.example"))
	require.NoError(t, q.Hold(ctx, held))
	q.Start(ctx)
	seen := map[EventKind]int{}
	for seen[EventDeferred] == 0 || seen[EventDelivered] == 0 {
		seen[ev.next(t).Kind]++
	}
	require.NoError(t, q.Close())

	// A message that was never started.
	d2 := newScripted()
	q2 := openKind(t, "file", dir, d2, Options{Clock: clk.Now})
	id3 := enqueue(t, q2, env("carol@example.org", "c@fast.example"))
	l, err := q2.List(ctx)
	require.NoError(t, err)
	var ids []string
	for _, e := range l {
		ids = append(ids, e.ID)
	}
	assert.Contains(t, ids, id)
	assert.Contains(t, ids, id3)
	ent, err := q2.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, StateDelivered, ent.Recipients[0].State)
	assert.Equal(t, StatePending, ent.Recipients[1].State)
	assert.Equal(t, 1, ent.Recipients[1].Attempts)
	assert.Equal(t, err451, ent.Recipients[1].LastError)
	assert.Equal(t, clk.Now().Add(5*time.Minute), ent.NextAttempt)
	h, err := q2.Get(ctx, held)
	require.NoError(t, err)
	assert.True(t, h.Held)
	assert.Equal(t, 0, h.Recipients[0].Attempts)
	require.NoError(t, q2.Close())

	// Third run: everything due is delivered, only to pending recipients.
	d3 := newScripted()
	q3 := openKind(t, "file", dir, d3, Options{Clock: clk.Now})
	defer q3.Close()
	q3.Start(ctx)
	clk.Advance(5 * time.Minute)
	q3.Wake()
	got := [][]string{d3.next(t).rcpts(), d3.next(t).rcpts()}
	slices.SortFunc(got, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	assert.Equal(t, [][]string{{"b@slow.example"}, {"c@fast.example"}}, got)
	require.NoError(t, q3.Release(ctx, held), "the held message stays held across restarts")
	assert.Equal(t, []string{"h@fast.example"}, d3.next(t).rcpts())
	waitEmpty(t, q3)
	assertSpoolEmpty(t, q3)
}

// TestCorruptSpool: unreadable files are quarantined and logged, half-written
// ones removed, and the rest delivered.
func TestCorruptSpool(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q := openKind(t, "file", dir, newScripted(), Options{})
	var ids []string
	for range 6 {
		ids = append(ids, enqueue(t, q, env("alice@example.org", "b@x.example")))
	}
	require.NoError(t, q.Close())
	msg := filepath.Join(dir, "msg")
	p := func(id string) string { return filepath.Join(msg, id) }
	// 0: truncated message file.
	fi, err := os.Stat(p(ids[0]))
	require.NoError(t, err)
	require.NoError(t, os.Truncate(p(ids[0]), fi.Size()-7))
	// 1: garbage.
	require.NoError(t, os.WriteFile(p(ids[1]), []byte("garbage\x00\xff"), 0o600))
	// 2: garbage state file.
	require.NoError(t, os.WriteFile(p(ids[2])+stateSuffix, []byte("{\"id\":"), 0o600))
	// 3: empty file.
	require.NoError(t, os.WriteFile(p(ids[3]), nil, 0o600))
	// 4: a valid trailer around invalid JSON.
	require.NoError(t, os.WriteFile(p(ids[4]), []byte("body{not json}\n000000000010 mbq1\n"), 0o600))
	// Half-written files and an orphan state file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp", newID()), []byte("half a mess"), 0o600))
	orphan := p(newID()) + stateSuffix
	require.NoError(t, os.WriteFile(orphan, []byte("{}"), 0o600))

	var logs testutil.Buffer
	d := newScripted()
	q2, err := Open(dir, d, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	defer q2.Close()
	l, err := q2.List(ctx)
	require.NoError(t, err)
	require.Len(t, l, 1)
	assert.Equal(t, ids[5], l[0].ID)
	for i := range 5 {
		_, err := os.Stat(filepath.Join(dir, "quarantine", ids[i]))
		assert.NoError(t, err, "message %d quarantined", i)
		assert.Contains(t, logs.String(), ids[i])
	}
	_, err = os.Stat(filepath.Join(dir, "quarantine", ids[2]+stateSuffix))
	assert.NoError(t, err)
	assert.Contains(t, logs.String(), "quarantine")
	tmp, err := os.ReadDir(filepath.Join(dir, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, tmp)
	_, err = os.Stat(orphan)
	assert.True(t, os.IsNotExist(err))

	q2.Start(ctx)
	assert.Equal(t, []string{"b@x.example"}, d.next(t).rcpts())
	waitEmpty(t, q2)
}

const crashEnv = "MAILBLOCKS_QUEUE_CRASH_DIR"

// TestMain runs crashEnqueuer instead of the tests when the test binary is
// started by TestCrashRecovery.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashEnqueuer(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashEnqueuer is the child process of TestCrashRecovery. It enqueues in
// a loop from several goroutines and prints each ID once Enqueue returned,
// until it is killed. Some recipients fail temporarily so that state files
// are being written too when the kill comes.
func crashEnqueuer(dir string) {
	d := DeliverFunc(func(ctx context.Context, env *mailblocks.Envelope, _ ioReaderAt, _ int64) []mailblocks.DeliveryStatus {
		res := make([]mailblocks.DeliveryStatus, len(env.Recipients))
		for i, r := range env.Recipients {
			res[i] = mailblocks.DeliveryStatus{Recipient: r.Address, Err: err451}
		}
		return res
	})
	q, err := Open(dir, d, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	q.Start(context.Background())
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				body := strings.Repeat(fmt.Sprintf("line %d of producer %d\r\n", i, g), 40)
				id, err := q.Enqueue(context.Background(), env("alice@example.org", fmt.Sprintf("r%d@x%d.example", i, g)), strings.NewReader(body))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(out, id)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery: kill -9 a process in the middle of enqueuing; after a
// restart every message whose Enqueue returned is delivered, and only
// complete messages are.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	// Kill at a different moment each run.
	killAfter := 100 + rand.IntN(300)
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if id := sc.Text(); validID(id) {
			acked[id] = true
		}
		if len(acked) == killAfter {
			break
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	// Lines printed after that are acknowledged too.
	for sc.Scan() {
		if id := sc.Text(); validID(id) {
			acked[id] = true
		}
	}
	_ = cmd.Wait()
	require.GreaterOrEqual(t, len(acked), killAfter, "child output: %s", stderr.String())

	var mu sync.Mutex
	delivered := map[string]int{}
	done := make(chan struct{})
	d := DeliverFunc(func(ctx context.Context, env *mailblocks.Envelope, body ioReaderAt, size int64) []mailblocks.DeliveryStatus {
		// Nothing half-written: the body is exactly what was enqueued.
		b := make([]byte, size)
		_, err := body.ReadAt(b, 0)
		if err != nil || size != 40*int64(len(strings.SplitAfter(string(b), "\r\n")[0])) {
			panic(fmt.Sprintf("bad body for %s: %d bytes, %v", env.ID, size, err))
		}
		mu.Lock()
		delivered[env.ID]++
		if allDelivered(acked, delivered) {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		mu.Unlock()
		return []mailblocks.DeliveryStatus{{Recipient: env.Recipients[0].Address}}
	})
	q, err := Open(dir, d, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	defer q.Close()
	q.Start(context.Background())
	// Messages the child tried are due in RetryInterval: now, please.
	require.NoError(t, q.Flush(context.Background()))
	select {
	case <-done:
	case <-time.After(60 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range acked {
		assert.Equal(t, 1, delivered[id], "message %s", id)
	}
	t.Logf("%d acknowledged, %d delivered after restart", len(acked), len(delivered))
	// Nothing was quarantined: a crash leaves no torn files.
	q2, err := os.ReadDir(filepath.Join(dir, "quarantine"))
	require.NoError(t, err)
	assert.Empty(t, q2)
}

func allDelivered(acked map[string]bool, delivered map[string]int) bool {
	for id := range acked {
		if delivered[id] == 0 {
			return false
		}
	}
	return true
}

// TestGroupCommit: enqueues waiting while the committer is busy are
// committed together, with one directory fsync.
func TestGroupCommit(t *testing.T) {
	q := openKind(t, "file", t.TempDir(), newScripted(), Options{})
	defer q.Close()
	fs := q.spool.(*fileSpool)
	first := true
	fs.beforeBatch = func() {
		if !first {
			return
		}
		first = false
		// Hold the first batch until the other producers are waiting.
		assert.Eventually(t, func() bool { return len(fs.commits) == 31 }, waitTimeout, time.Millisecond)
	}
	var wg sync.WaitGroup
	ids := make(chan string, 32)
	for range 32 {
		wg.Go(func() {
			id, err := q.Enqueue(context.Background(), env("a@example.org", "b@example.com"), strings.NewReader(testBody))
			assert.NoError(t, err)
			ids <- id
		})
	}
	wg.Wait()
	assert.Len(t, ids, 32)
	assert.Equal(t, int64(1), fs.batches.Load(), "32 messages, one directory fsync")
}
