// Package ctxio makes long reads give up when their context is done: a
// message body copied from a stalled client or producer must not hold a
// delivery, an enqueue or a copy after its caller has gone.
package ctxio

import (
	"context"
	"io"
)

// Reader returns a reader that fails with ctx's error once ctx is done,
// and otherwise reads from r. It checks ctx before each Read, so a Read
// already blocked in r returns only when r does.
func Reader(ctx context.Context, r io.Reader) io.Reader {
	return reader{ctx, r}
}

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
