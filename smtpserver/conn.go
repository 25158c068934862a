package smtpserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// conn wraps a client's TCP connection, beneath TLS when there is TLS. It
// owns the read deadlines (go-smtp's ReadTimeout is off): CommandTimeout
// while waiting for commands, and during a message transfer a deadline of
// DataTimeout plus the time to receive the bytes read so far at MinDataRate
// (like Postfix's smtpd_min_data_rate), which stops clients that trickle
// one byte at a time. It also closes the connection right after a reply
// that ends the session (421) and interrupts idle sessions on Shutdown.
type conn struct {
	net.Conn
	srv     *Server
	id      string
	ip      netip.Addr
	mode    Mode
	log     *slog.Logger
	trusted bool
	ctx     context.Context
	onClose func()

	closeAfterWrite atomic.Bool
	stopping        atomic.Bool // Shutdown asked idle reads to stop
	// readEOF: the client closed its side. A message whose stream ends
	// after that was cut short: go-smtp ends a BDAT chunk cut by the
	// client's FIN like a complete one (see guard).
	readEOF   atomic.Bool
	closeOnce sync.Once

	// dataWG counts the message transfers in progress (session.data);
	// once dataOver is set (under dataMu) none starts.
	dataMu   sync.Mutex
	dataOver bool
	dataWG   sync.WaitGroup

	mu        sync.Mutex
	inData    bool
	dataStart time.Time
	dataBytes int64

	// Per connection, across the go-smtp sessions (a new one after
	// STARTTLS).
	errors       atomic.Int32
	authFailures atomic.Int32
}

// beginData registers a message transfer; false when the connection has
// ended (waitData was called).
func (c *conn) beginData() bool {
	c.dataMu.Lock()
	defer c.dataMu.Unlock()
	if c.dataOver {
		return false
	}
	c.dataWG.Add(1)
	return true
}

// waitData waits for the message transfers in progress, and makes later
// ones refuse to start.
func (c *conn) waitData() {
	c.dataMu.Lock()
	c.dataOver = true
	c.dataMu.Unlock()
	c.dataWG.Wait()
}

// startData switches the read deadline to the data regime.
func (c *conn) startData() {
	c.mu.Lock()
	if !c.inData {
		c.inData = true
		c.dataStart = time.Now()
		c.dataBytes = 0
	}
	c.mu.Unlock()
}

// endData switches back to the command regime. It is called from
// Session.Reset, which go-smtp calls after the reply to DATA or BDAT LAST,
// so that draining an oversized message is bounded by the data deadline too.
func (c *conn) endData() {
	c.mu.Lock()
	c.inData = false
	c.mu.Unlock()
}

func (c *conn) Read(b []byte) (int, error) {
	cfg := c.srv.cfg
	now := time.Now()
	var dl time.Time
	if cfg.CommandTimeout > 0 {
		dl = now.Add(cfg.CommandTimeout)
	}
	c.mu.Lock()
	inData := c.inData
	if inData && cfg.DataTimeout > 0 {
		d := c.dataStart.Add(cfg.DataTimeout)
		if cfg.MinDataRate > 0 {
			d = d.Add(time.Duration(c.dataBytes) * time.Second / time.Duration(cfg.MinDataRate))
		}
		if dl.IsZero() || d.Before(dl) {
			dl = d
		}
	}
	c.mu.Unlock()
	if err := c.Conn.SetReadDeadline(dl); err != nil {
		return 0, err
	}
	// Checked after setting the deadline: interrupt sets the flag before
	// its own deadline, so one of the two always wins.
	if !inData && c.stopping.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := c.Conn.Read(b)
	if err == io.EOF {
		c.readEOF.Store(true)
	}
	if inData {
		c.mu.Lock()
		c.dataBytes += int64(n)
		c.mu.Unlock()
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if c.closeAfterWrite.Load() {
		c.Conn.Close()
	}
	return n, err
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// interrupt makes a session waiting for a command end with a timeout
// (go-smtp answers 421 4.4.2); a transfer in progress goes on and the
// session ends at its next command.
func (c *conn) interrupt() {
	c.stopping.Store(true)
	c.mu.Lock()
	inData := c.inData
	c.mu.Unlock()
	if !inData {
		c.Conn.SetReadDeadline(time.Now())
	}
}
