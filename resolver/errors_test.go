package resolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name                          string
		err                           error
		notFound, nxdomain, temporary bool
	}{
		{"nil", nil, false, false, false},
		{"nxdomain", &Error{Kind: KindNXDomain}, true, true, false},
		{"nodata", &Error{Kind: KindNoData}, true, false, false},
		{"null mx", &Error{Kind: KindNullMX}, false, false, false},
		{"bad name", &Error{Kind: KindBadName}, false, false, false},
		{"servfail", &Error{Kind: KindServFail}, false, false, true},
		{"refused", &Error{Kind: KindRefused}, false, false, true},
		{"timeout", &Error{Kind: KindTimeout}, false, false, true},
		{"network", &Error{Kind: KindNetwork, Err: io.EOF}, false, false, true},
		{"bad response", &Error{Kind: KindBadResponse}, false, false, true},
		{"cname loop", &Error{Kind: KindCNAMELoop}, false, false, true},
		{"wrapped nxdomain", fmt.Errorf("smtpclient: mx: %w", &Error{Kind: KindNXDomain}), true, true, false},
		{"bare ErrNotFound", ErrNotFound, true, false, false},
		{"bare ErrNXDomain", ErrNXDomain, true, true, false},
		{"bare ErrNullMX", ErrNullMX, false, false, false},
		{"bare ErrTemporary", ErrTemporary, false, false, true},
		{"context canceled", context.Canceled, false, false, true},
		{"deadline", context.DeadlineExceeded, false, false, true},
		{"unknown error", errors.New("boom"), false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.notFound, IsNotFound(tt.err), "IsNotFound")
			assert.Equal(t, tt.nxdomain, IsNXDomain(tt.err), "IsNXDomain")
			assert.Equal(t, tt.temporary, IsTemporary(tt.err), "IsTemporary")
			var re *Error
			if errors.As(tt.err, &re) {
				assert.Equal(t, tt.temporary, re.Temporary())
				assert.Equal(t, tt.temporary, errors.Is(tt.err, ErrTemporary))
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	err := &Error{Kind: KindServFail, Type: "MX", Name: "example.com", Server: "192.0.2.53:53"}
	assert.Equal(t, "resolver: MX example.com: server failure (server 192.0.2.53:53)", err.Error())
	err = &Error{Kind: KindTimeout, Type: "A", Name: "x", Err: context.DeadlineExceeded}
	assert.Equal(t, "resolver: A x: timeout: context deadline exceeded", err.Error())
	assert.True(t, err.Timeout())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, "kind(99)", Kind(99).String())
}
