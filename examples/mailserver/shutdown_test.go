package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/queue"
)

// slowRelay is a smarthost that holds DATA until release is closed.
type slowRelay struct {
	entered chan struct{}
	release chan struct{}
}

func (r *slowRelay) NewSession(*smtp.Conn) (smtp.Session, error) { return r, nil }
func (r *slowRelay) Mail(string, *smtp.MailOptions) error        { return nil }
func (r *slowRelay) Rcpt(string, *smtp.RcptOptions) error        { return nil }
func (r *slowRelay) Reset()                                      {}
func (r *slowRelay) Logout() error                               { return nil }
func (r *slowRelay) Data(body io.Reader) error {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	r.entered <- struct{}{}
	<-r.release
	return nil
}

// TestShutdownLetsDeliveryFinish: the signal that starts a graceful
// shutdown does not cancel an outbound delivery in progress; Shutdown
// waits for it, and the delivered message leaves the queue.
func TestShutdownLetsDeliveryFinish(t *testing.T) {
	relay := &slowRelay{entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv := smtp.NewServer(relay)
	srv.Domain = "smarthost.test"
	srv.Addr = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })

	ts := startServer(t, "", "-user", alice+":"+alicePass, "-relay", srv.Addr, "-relay-tls", "none")
	require.Eventually(t, func() bool {
		return submit(t, ts.Addr("submission"), alice, alicePass, alice, []string{"far@away.test"},
			message(alice, "far@away.test", "slow", "x")) == nil
	}, waitFor, 200*time.Millisecond)
	select {
	case <-relay.entered:
	case <-time.After(waitFor):
		t.Fatal("the smarthost never got the message")
	}

	stopped := make(chan struct{})
	go func() { ts.stop(); close(stopped) }()
	require.Eventually(t, func() bool {
		return strings.Contains(ts.stderr.String(), "shutting down")
	}, waitFor, 20*time.Millisecond)
	close(relay.release)
	select {
	case <-stopped:
	case <-time.After(2 * waitFor):
		t.Fatal("shutdown did not return")
	}

	q, err := queue.Open(filepath.Join(ts.dataDir, "queue"), nil, queue.Options{})
	require.NoError(t, err)
	defer q.Close()
	left, err := q.List(context.Background())
	require.NoError(t, err)
	assert.Empty(t, left, "the delivery in progress was cancelled by the shutdown signal")
}
