package queue

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/mailblocks/mailblocks"
)

// State is the delivery state of one recipient of a queued message.
type State string

const (
	// StatePending: not yet delivered, will be tried (again).
	StatePending State = "pending"
	// StateDelivered: the next hop accepted the recipient.
	StateDelivered State = "delivered"
	// StateFailed: permanently failed or expired; a bounce was generated
	// when the recipient's NOTIFY asked for one.
	StateFailed State = "failed"
)

// record is what the spool keeps about a message besides its body: the
// envelope and the per-recipient progress. It is serialised as JSON; the
// field names are short because 100,000 of them may sit on disk and in
// memory.
type record struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Size is the body size in bytes. It is not serialised in the
	// message file (the file layout gives it) but is in the state file.
	Size int64       `json:"size"`
	Held bool        `json:"held,omitempty"`
	Env  storedEnv   `json:"env"`
	Rcpt []rcptState `json:"rcpt"`

	// The retry of owed notices (rcptState.Notice) whose hand-off to
	// Options.Bounce failed: failed attempts since the last successful
	// flush, the first of those failures (notices are dropped
	// MaxQueueTime after it), and when to try again. Zero when no
	// hand-off has failed.
	NoticeTries int       `json:"ntries,omitempty"`
	NoticeSince time.Time `json:"nsince,omitzero"`
	NoticeNext  time.Time `json:"nnext,omitzero"`
}

// storedEnv is the persistent part of a mailblocks.Envelope. The TLS state
// of the inbound connection is not kept: it is only meaningful while that
// connection exists.
type storedEnv struct {
	ID         string    `json:"id,omitempty"`
	From       string    `json:"from"`
	RemoteAddr string    `json:"remote,omitempty"`
	Helo       string    `json:"helo,omitempty"`
	AuthUser   string    `json:"auth,omitempty"`
	TLS        bool      `json:"tls,omitempty"`
	Received   time.Time `json:"received"`
	Size       int64     `json:"size,omitempty"`
	Body       string    `json:"body,omitempty"`
	SMTPUTF8   bool      `json:"utf8,omitempty"`
	RequireTLS bool      `json:"reqtls,omitempty"`
	Return     string    `json:"ret,omitempty"`
	EnvelopeID string    `json:"envid,omitempty"`
}

type rcptState struct {
	Addr          string    `json:"addr"`
	Notify        []string  `json:"notify,omitempty"`
	NotifySet     bool      `json:"nset,omitempty"` // distinguishes nil from empty Notify
	ORCPT         string    `json:"orcpt,omitempty"`
	State         State     `json:"state"`
	Attempts      int       `json:"attempts,omitempty"`
	LastAttempt   time.Time `json:"last,omitzero"`
	NextAttempt   time.Time `json:"next,omitzero"`
	Code          int       `json:"code,omitempty"`
	Enhanced      [3]int    `json:"enh,omitzero"`
	Text          string    `json:"text,omitempty"`
	RemoteHost    string    `json:"host,omitempty"`
	RemoteDSN     bool      `json:"rdsn,omitempty"`
	DelayNotified bool      `json:"delayed,omitempty"`
	// Notice is the DSN owed for this recipient and not yet handed over
	// (noticeKind+1; 0 for none). It is persisted so that a crash between
	// the outcome and the notice does not lose the notice.
	Notice int `json:"notice,omitempty"`
}

func (r *rcptState) recipient() mailblocks.Recipient {
	rc := mailblocks.Recipient{Address: r.Addr, OriginalRecipient: r.ORCPT}
	if r.NotifySet {
		rc.Notify = make([]mailblocks.DSNNotify, len(r.Notify))
		for i, n := range r.Notify {
			rc.Notify[i] = mailblocks.DSNNotify(n)
		}
	}
	return rc
}

// lastError rebuilds the recipient's last failure, nil when there is none.
func (r *rcptState) lastError() *mailblocks.Error {
	if r.Code == 0 && r.Text == "" {
		return nil
	}
	return &mailblocks.Error{Code: r.Code, Enhanced: mailblocks.EnhancedCode(r.Enhanced), Message: r.Text}
}

func newRecord(id string, env *mailblocks.Envelope, now time.Time) *record {
	rec := &record{
		ID:      id,
		Created: now,
		Env: storedEnv{
			ID:         env.ID,
			From:       env.From,
			Helo:       env.Helo,
			AuthUser:   env.AuthUser,
			TLS:        env.TLS != nil,
			Received:   env.Received,
			Size:       env.Size,
			Body:       string(env.Body),
			SMTPUTF8:   env.SMTPUTF8,
			RequireTLS: env.RequireTLS,
			Return:     string(env.Return),
			EnvelopeID: env.EnvelopeID,
		},
		Rcpt: make([]rcptState, len(env.Recipients)),
	}
	if rec.Env.ID == "" {
		rec.Env.ID = id
	}
	if rec.Env.Received.IsZero() {
		rec.Env.Received = now
	}
	if env.RemoteAddr != nil {
		rec.Env.RemoteAddr = env.RemoteAddr.String()
	}
	for i, r := range env.Recipients {
		rs := rcptState{Addr: r.Address, ORCPT: r.OriginalRecipient, State: StatePending}
		if r.Notify != nil {
			rs.NotifySet = true
			rs.Notify = make([]string, len(r.Notify))
			for k, n := range r.Notify {
				rs.Notify[k] = string(n)
			}
		}
		rec.Rcpt[i] = rs
	}
	return rec
}

// envelope rebuilds the envelope with the recipients at the given indexes.
func (rec *record) envelope(idx []int) *mailblocks.Envelope {
	e := &mailblocks.Envelope{
		ID:         rec.Env.ID,
		From:       rec.Env.From,
		Helo:       rec.Env.Helo,
		AuthUser:   rec.Env.AuthUser,
		Received:   rec.Env.Received,
		Size:       rec.Env.Size,
		Body:       mailblocks.BodyType(rec.Env.Body),
		SMTPUTF8:   rec.Env.SMTPUTF8,
		RequireTLS: rec.Env.RequireTLS,
		Return:     mailblocks.DSNReturn(rec.Env.Return),
		EnvelopeID: rec.Env.EnvelopeID,
		Recipients: make([]mailblocks.Recipient, len(idx)),
	}
	for k, i := range idx {
		e.Recipients[k] = rec.Rcpt[i].recipient()
	}
	return e
}

// clone returns a deep enough copy for snapshots taken under the queue lock.
func (rec *record) clone() *record {
	c := *rec
	c.Rcpt = append([]rcptState(nil), rec.Rcpt...)
	return &c
}

// newID returns a queue ID: 8 bytes of wall-clock nanoseconds followed by
// 5 random bytes, hex encoded. IDs sort by creation time, which makes the
// spool directory listing come out oldest first, and they are safe as file
// names.
func newID() string {
	var b [13]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id can be a queue ID (and so a file name).
func validID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
