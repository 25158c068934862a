package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/internal/testutil"
)

const waitTimeout = 20 * time.Second

// newFakeClock returns a manual clock for Options.Clock.
func newFakeClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
}

// delivery is one recorded Deliver call.
type delivery struct {
	env  *mailblocks.Envelope
	body string
}

func (d delivery) rcpts() []string {
	var s []string
	for _, r := range d.env.Recipients {
		s = append(s, r.Address)
	}
	return s
}

// scripted is a fake Deliverer. For each recipient address it plays a
// script of outcomes in order, the last one repeating; an address without a
// script is accepted. Every call is recorded and sent on calls.
type scripted struct {
	mu        sync.Mutex
	scripts   map[string][]error
	remoteDSN bool
	host      string
	calls     chan delivery
	all       []delivery
	// gate, when set, is called inside Deliver before answering.
	gate func(env *mailblocks.Envelope)
}

func newScripted() *scripted {
	return &scripted{scripts: make(map[string][]error), calls: make(chan delivery, 1000), host: "mx.example.net"}
}

func (s *scripted) script(addr string, outcomes ...error) *scripted {
	s.mu.Lock()
	s.scripts[addr] = outcomes
	s.mu.Unlock()
	return s
}

func (s *scripted) Deliver(ctx context.Context, env *mailblocks.Envelope, body io.ReaderAt, size int64) []mailblocks.DeliveryStatus {
	// The body must be readable more than once.
	b1, err1 := io.ReadAll(io.NewSectionReader(body, 0, size))
	b2, err2 := io.ReadAll(io.NewSectionReader(body, 0, size))
	if err1 != nil || err2 != nil || !bytes.Equal(b1, b2) {
		panic(fmt.Sprintf("body not re-readable: %v %v", err1, err2))
	}
	if s.gate != nil {
		s.gate(env)
	}
	s.mu.Lock()
	res := make([]mailblocks.DeliveryStatus, len(env.Recipients))
	for i, r := range env.Recipients {
		var err error
		if sc := s.scripts[r.Address]; len(sc) > 0 {
			err = sc[0]
			if len(sc) > 1 {
				s.scripts[r.Address] = sc[1:]
			}
		}
		res[i] = mailblocks.DeliveryStatus{Recipient: r.Address, Err: err, RemoteHost: s.host, RemoteDSN: s.remoteDSN}
		if errors.Is(err, errNet) {
			res[i].RemoteHost = "" // no server reached
		}
	}
	d := delivery{env: env.Clone(), body: string(b1)}
	s.all = append(s.all, d)
	s.mu.Unlock()
	s.calls <- d
	return res
}

func (s *scripted) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-s.calls:
		return d
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a delivery")
	}
	return delivery{}
}

// events collects Options.OnEvent.
type events chan Event

func (e events) on(ev Event) { e <- ev }

func (e events) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-e:
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for an event")
	}
	return Event{}
}

// nextKind skips events until one of kind k.
func (e events) nextKind(t *testing.T, k EventKind) Event {
	t.Helper()
	for {
		if ev := e.next(t); ev.Kind == k {
			return ev
		}
	}
}

// notices collects DSNs handed to Options.Bounce.
type notices chan notice

type notice struct {
	env  *mailblocks.Envelope
	body string
}

func (n notices) handler() BounceHandler {
	return BounceFunc(func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		n <- notice{env, string(b)}
		return nil
	})
}

func (n notices) next(t *testing.T) notice {
	t.Helper()
	select {
	case x := <-n:
		return x
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a notice")
	}
	return notice{}
}

// kinds are the two spools every behaviour test runs against.
var kinds = []string{"file", "memory"}

func openKind(t *testing.T, kind, dir string, d Deliverer, opts Options) *Queue {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if kind == "memory" {
		return NewMemory(d, opts)
	}
	q, err := Open(dir, d, opts)
	require.NoError(t, err)
	return q
}

// startQueue opens and starts a queue and closes it at the end of the test.
func startQueue(t *testing.T, kind string, d Deliverer, opts Options) *Queue {
	t.Helper()
	q := openKind(t, kind, t.TempDir(), d, opts)
	q.Start(context.Background())
	t.Cleanup(func() { q.Close() })
	return q
}

func testLogger(t *testing.T) *slog.Logger { return testutil.Logger(t, slog.LevelDebug) }

func env(from string, to ...string) *mailblocks.Envelope {
	e := &mailblocks.Envelope{From: from}
	for _, r := range to {
		e.Recipients = append(e.Recipients, mailblocks.Recipient{Address: r})
	}
	return e
}

const testBody = "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Hello\r\nMessage-Id: <1@example.org>\r\n\r\nHi Bob.\r\n"

func enqueue(t *testing.T, q *Queue, e *mailblocks.Envelope) string {
	t.Helper()
	id, err := q.Enqueue(context.Background(), e, strings.NewReader(testBody))
	require.NoError(t, err)
	return id
}

var (
	err451 = mailblocks.NewError(451, mailblocks.EnhancedCode{4, 4, 1}, "Try again later")
	err550 = mailblocks.NewError(550, mailblocks.EnhancedCode{5, 1, 1}, "No such user here")
	errNet = errors.New("dial tcp 192.0.2.1:25: connection refused")
)

// waitEmpty waits until the queue has no message left.
func waitEmpty(t *testing.T, q *Queue) {
	t.Helper()
	require.Eventually(t, func() bool {
		l, err := q.List(context.Background())
		return err == nil && len(l) == 0
	}, waitTimeout, 5*time.Millisecond)
}

type ioReaderAt = io.ReaderAt
