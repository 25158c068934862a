package mailblocks

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestErrorFormatting(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Code: 250}, "250"},
		{&Error{Code: 550, Enhanced: EnhancedCode{5, 1, 1}, Message: "No such user"}, "550 5.1.1 No such user"},
		{&Error{Code: 451, Message: "later"}, "451 later"},
		{ErrTemporary.Wrap(io.EOF), "451 4.3.0 Temporary local problem, please try again later: EOF"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.err.Error())
	}
	assert.Equal(t, "5.7.1", EnhancedCode{5, 7, 1}.String())
	assert.True(t, EnhancedCode{}.IsZero())
	assert.False(t, EnhancedCode{2, 0, 0}.IsZero())
	e := NewError(550, EnhancedCode{5, 7, 1}, "sender %s rejected", "a@b")
	assert.Equal(t, "550 5.7.1 sender a@b rejected", e.Error())
}

func TestErrorTemporary(t *testing.T) {
	tests := []struct {
		code int
		want bool
	}{{250, false}, {399, false}, {400, true}, {421, true}, {451, true}, {499, true}, {500, false}, {550, false}}
	for _, tt := range tests {
		assert.Equal(t, tt.want, (&Error{Code: tt.code}).Temporary(), tt.code)
	}
	assert.True(t, IsTemporary(ErrRateLimited))
	assert.False(t, IsTemporary(ErrNoSuchUser))
	assert.False(t, IsTemporary(nil))
	assert.True(t, IsTemporary(errors.New("disk on fire")), "an uncoded error is retried, not bounced")
	assert.False(t, IsTemporary(fmt.Errorf("queue: %w", ErrMessageTooBig)))
}

func TestErrorAsAndIs(t *testing.T) {
	cause := errors.New("lookup failed")
	specific := ErrNoSuchUser.WithMessage("No mailbox bob here").Wrap(cause)
	wrapped := fmt.Errorf("smtpserver: rcpt: %w", specific)

	var se *Error
	require.ErrorAs(t, wrapped, &se)
	assert.Equal(t, 550, se.Code)
	assert.Equal(t, "No mailbox bob here", se.Message)
	assert.ErrorIs(t, wrapped, ErrNoSuchUser, "Is matches on codes, not message")
	assert.ErrorIs(t, wrapped, cause, "the cause is reachable with Unwrap")
	assert.NotErrorIs(t, wrapped, ErrMailboxFull)
	assert.NotErrorIs(t, wrapped, ErrBadDestinationSyntax, "same code 5xx class, other codes")
	assert.NotErrorIs(t, ErrMailboxFull, ErrMessageTooBig, "same reply code, other enhanced code")

	// WithMessage and Wrap copy: the well-known values are not modified.
	assert.Equal(t, "No such user here", ErrNoSuchUser.Message)
	assert.Nil(t, ErrNoSuchUser.Err)
	assert.False(t, ErrNoSuchUser.Is(cause))
}

func TestAsError(t *testing.T) {
	assert.Nil(t, AsError(nil))

	coded := fmt.Errorf("wrapped: %w", ErrRelayDenied)
	assert.Same(t, ErrRelayDenied, AsError(coded))

	secret := errors.New("open /var/spool/secret: permission denied")
	e := AsError(secret)
	require.NotNil(t, e)
	assert.Equal(t, 451, e.Code)
	assert.Equal(t, EnhancedCode{4, 3, 0}, e.Enhanced)
	assert.True(t, e.Temporary())
	assert.NotContains(t, e.Message, "secret", "the internal text is not shown to the client")
	assert.ErrorIs(t, e, secret, "but it is kept for the logs")
	assert.ErrorIs(t, e, ErrTemporary)
	assert.Nil(t, ErrTemporary.Err, "AsError did not modify ErrTemporary")
}

func TestWellKnownErrors(t *testing.T) {
	all := []*Error{ErrTemporary, ErrNoSuchUser, ErrBadDestinationSyntax, ErrBadSenderSyntax, ErrRelayDenied,
		ErrMailboxFull, ErrMessageTooBig, ErrTooManyRecipients, ErrLoopDetected, ErrAuthRequired, ErrAuthFailed,
		ErrRateLimited, ErrNeedsSMTPUTF8}
	for _, e := range all {
		t.Run(e.Error(), func(t *testing.T) {
			assert.True(t, e.Code >= 400 && e.Code < 600)
			// RFC 3463 2: the class of the enhanced code matches the reply.
			assert.Equal(t, e.Code/100, e.Enhanced[0])
			assert.NotEmpty(t, e.Message)
		})
	}
}
