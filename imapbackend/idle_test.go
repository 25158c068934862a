package imapbackend

import (
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// updates collects unilateral data seen by a client.
type updates struct {
	mu       sync.Mutex
	exists   []uint32
	expunged []uint32
	flags    map[uint32][]imap.Flag
}

func (u *updates) handler() *imapclient.UnilateralDataHandler {
	u.flags = map[uint32][]imap.Flag{}
	return &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				u.mu.Lock()
				u.exists = append(u.exists, *d.NumMessages)
				u.mu.Unlock()
			}
		},
		Expunge: func(seq uint32) {
			u.mu.Lock()
			u.expunged = append(u.expunged, seq)
			u.mu.Unlock()
		},
		Fetch: func(msg *imapclient.FetchMessageData) {
			buf, err := msg.Collect()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.flags[buf.SeqNum] = buf.Flags
			u.mu.Unlock()
		},
	}
}

func (u *updates) snapshot() (exists, expunged []uint32, flags map[uint32][]imap.Flag) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := map[uint32][]imap.Flag{}
	for k, v := range u.flags {
		f[k] = v
	}
	return append([]uint32(nil), u.exists...), append([]uint32(nil), u.expunged...), f
}

const waitFor = 10 * time.Second

// TestIdle: a client in IDLE sees a delivery through the store (another
// goroutine, as SMTP would), and another session's STORE and EXPUNGE.
func TestIdle(t *testing.T) { forEachStore(t, testIdle) }

func testIdle(t *testing.T, ts *testServer) {
	ts.deliver(t, "INBOX", msgPlain)
	ts.deliver(t, "INBOX", msgPlain)

	var u updates
	a := ts.dial(t, &imapclient.Options{UnilateralDataHandler: u.handler()})
	_, err := a.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	idle, err := a.Idle()
	require.NoError(t, err)

	go ts.deliver(t, "INBOX", msgMultipart)
	require.Eventually(t, func() bool {
		exists, _, _ := u.snapshot()
		return len(exists) > 0 && exists[len(exists)-1] == 3
	}, waitFor, 10*time.Millisecond, "EXISTS 3 during IDLE")

	b := ts.dial(t, nil)
	_, err = b.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.NoError(t, b.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close())
	require.Eventually(t, func() bool {
		_, _, flags := u.snapshot()
		return assert.ObjectsAreEqual([]imap.Flag{imap.FlagFlagged}, flags[2])
	}, waitFor, 10*time.Millisecond, "FETCH FLAGS during IDLE")

	require.NoError(t, b.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	_, err = b.Expunge().Collect()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, expunged, _ := u.snapshot()
		return len(expunged) == 1 && expunged[0] == 1
	}, waitFor, 10*time.Millisecond, "EXPUNGE during IDLE")

	require.NoError(t, idle.Close())
	require.NoError(t, idle.Wait())
	// The view matches the store after the updates.
	msgs, err := a.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	assert.EqualValues(t, 2, msgs[0].UID)
	assert.Equal(t, []imap.Flag{imap.FlagFlagged}, msgs[0].Flags)
	assert.EqualValues(t, 3, msgs[1].UID)
}

// TestNoop: NOOP reports other sessions' changes; FETCH does not send
// EXPUNGE (RFC 3501 7.4.1) but NOOP then does.
func TestNoop(t *testing.T) {
	ts := newTestServer(t, Options{})
	for i := 0; i < 3; i++ {
		ts.deliver(t, "INBOX", msgPlain)
	}
	var u updates
	a := ts.dial(t, &imapclient.Options{UnilateralDataHandler: u.handler()})
	_, err := a.Select("INBOX", nil).Wait()
	require.NoError(t, err)

	b := ts.dial(t, nil)
	_, err = b.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.NoError(t, b.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagAnswered, imap.FlagDeleted}}, nil).Close())
	_, err = b.Expunge().Collect()
	require.NoError(t, err)
	ts.deliver(t, "INBOX", msgMultipart)

	// FETCH while the expunge is pending: no EXPUNGE, and the message
	// still answers from the view or is left out.
	msgs, err := a.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true}).Collect()
	require.NoError(t, err)
	assert.Len(t, msgs, 3)
	require.Eventually(t, func() bool {
		require.NoError(t, a.Noop().Wait())
		exists, expunged, _ := u.snapshot()
		// EXISTS 4 may come first (during FETCH, with the expunged
		// message still counted), then EXPUNGE 3.
		return len(expunged) == 1 && expunged[0] == 3 && len(exists) > 0
	}, waitFor, 20*time.Millisecond)
	assert.EqualValues(t, 3, a.Mailbox().NumMessages)
	msgs, err = a.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.EqualValues(t, 4, msgs[0].UID)
	assert.Equal(t, "Résumé attached", msgs[0].Envelope.Subject)
}

// TestSelectedFolderDeleted: when another session deletes the selected
// folder, the session ends with BYE rather than show a ghost.
func TestSelectedFolderDeleted(t *testing.T) {
	ts := newTestServer(t, Options{})
	a := ts.dial(t, nil)
	require.NoError(t, a.Create("Doomed", nil).Wait())
	_, err := a.Select("Doomed", nil).Wait()
	require.NoError(t, err)
	b := ts.dial(t, nil)
	require.NoError(t, b.Delete("Doomed").Wait())
	require.Eventually(t, func() bool { return a.Noop().Wait() != nil }, waitFor, 20*time.Millisecond)
	select {
	case <-a.Closed():
	case <-time.After(waitFor):
		t.Fatal("connection not closed")
	}
}

// TestAppendToSelected: APPEND and COPY into the selected mailbox are
// announced with EXISTS in the same command's responses.
func TestAppendToSelected(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.deliver(t, "INBOX", msgPlain)
	var u updates
	c := ts.dial(t, &imapclient.Options{UnilateralDataHandler: u.handler()})
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	ac := c.Append("INBOX", int64(len(msgPlain)), nil)
	_, err = ac.Write([]byte(msgPlain))
	require.NoError(t, err)
	require.NoError(t, ac.Close())
	_, err = ac.Wait()
	require.NoError(t, err)
	exists, _, _ := u.snapshot()
	assert.Equal(t, []uint32{2}, exists)
	_, err = c.Copy(imap.SeqSetNum(1, 2), "INBOX").Wait()
	require.NoError(t, err)
	exists, _, _ = u.snapshot()
	assert.Equal(t, []uint32{2, 4}, exists)
}

// TestRenameSelected: renaming the selected folder (or a parent) keeps it
// selected under its new name.
func TestRenameSelected(t *testing.T) { forEachStore(t, testRenameSelected) }

func testRenameSelected(t *testing.T, ts *testServer) {
	c := ts.dial(t, nil)
	require.NoError(t, c.Create("Old/Child", nil).Wait())
	ts.deliver(t, "Old/Child", msgPlain)
	_, err := c.Select("Old/Child", nil).Wait()
	require.NoError(t, err)
	require.NoError(t, c.Rename("Old", "New", nil).Wait())
	require.NoError(t, c.Noop().Wait())
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Equal(t, "Hello there", msgs[0].Envelope.Subject)
	st, err := c.Status("New/Child", &imap.StatusOptions{NumMessages: true}).Wait()
	require.NoError(t, err)
	assert.EqualValues(t, 1, *st.NumMessages)
}
