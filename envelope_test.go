package mailblocks

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRecipientWants(t *testing.T) {
	tests := []struct {
		name                               string
		notify                             []DSNNotify
		success, failure, delay, neverWant bool
	}{
		{"no NOTIFY: RFC 3461 default", nil, false, true, true, false},
		{"SUCCESS only", []DSNNotify{NotifySuccess}, true, false, false, false},
		{"SUCCESS,FAILURE", []DSNNotify{NotifySuccess, NotifyFailure}, true, true, false, false},
		{"NEVER", []DSNNotify{NotifyNever}, false, false, false, true},
		{"empty but non-nil", []DSNNotify{}, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Recipient{Address: "a@example.com", Notify: tt.notify}
			assert.Equal(t, tt.success, r.Wants(NotifySuccess))
			assert.Equal(t, tt.failure, r.Wants(NotifyFailure))
			assert.Equal(t, tt.delay, r.Wants(NotifyDelay))
			assert.Equal(t, tt.neverWant, r.Wants(NotifyNever))
		})
	}
}

func TestEnvelopeClone(t *testing.T) {
	e := &Envelope{
		ID:   "abc",
		From: "s@example.com",
		Recipients: []Recipient{
			{Address: "a@example.com", Notify: []DSNNotify{NotifySuccess}},
			{Address: "b@example.com"},
		},
		Body:     Body8BitMIME,
		SMTPUTF8: true,
		Return:   ReturnHeaders,
	}
	c := e.Clone()
	assert.Equal(t, e, c)

	c.Recipients[0].Address = "changed@example.com"
	c.Recipients[0].Notify[0] = NotifyNever
	c.Recipients = append(c.Recipients, Recipient{Address: "c@example.com"})
	c.From = "other@example.com"

	assert.Equal(t, "a@example.com", e.Recipients[0].Address)
	assert.Equal(t, NotifySuccess, e.Recipients[0].Notify[0])
	assert.Len(t, e.Recipients, 2)
	assert.Equal(t, "s@example.com", e.From)
	assert.Nil(t, c.Recipients[1].Notify, "nil NOTIFY stays nil: it means the RFC 3461 default")

	empty := (&Envelope{}).Clone()
	assert.Empty(t, empty.Recipients)
}
