package smtpclient

import (
	"sync"
	"time"
)

// pool keeps idle sessions per destination host so that several messages
// to the same host share one connection (RFC 5321 3.3 allows any number of
// transactions per session). Each idle session is closed when it has been
// idle for IdleTimeout, by its own timer.
type pool struct {
	mu      sync.Mutex
	idle    map[string][]*conn
	closed  bool
	maxIdle int
	timeout time.Duration
	maxMsgs int
}

// get returns an idle session for key that satisfies ok, most recently
// used first, or nil. The session is no longer in the pool.
func (p *pool) get(key string, ok func(*conn) bool) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	for i := len(list) - 1; i >= 0; i-- {
		cn := list[i]
		if !ok(cn) {
			continue
		}
		list = append(list[:i], list[i+1:]...)
		if len(list) == 0 {
			delete(p.idle, key)
		} else {
			p.idle[key] = list
		}
		cn.idle.Stop()
		return cn
	}
	return nil
}

// put returns a healthy session after a transaction. It is closed instead
// when the pool is closed or full or the session has carried its
// MaxMessagesPerConn.
func (p *pool) put(cn *conn) {
	p.mu.Lock()
	if p.closed || cn.msgs >= p.maxMsgs || len(p.idle[cn.key]) >= p.maxIdle {
		p.mu.Unlock()
		cn.close()
		return
	}
	p.idle[cn.key] = append(p.idle[cn.key], cn)
	cn.idle = time.AfterFunc(p.timeout, func() {
		if p.remove(cn) {
			cn.close()
		}
	})
	p.mu.Unlock()
}

// remove takes cn out of the pool; false when someone else took it first.
func (p *pool) remove(cn *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[cn.key]
	for i, c := range list {
		if c == cn {
			list = append(list[:i], list[i+1:]...)
			if len(list) == 0 {
				delete(p.idle, cn.key)
			} else {
				p.idle[cn.key] = list
			}
			return true
		}
	}
	return false
}

// close closes every idle session and makes put close sessions from now
// on.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*conn
	for _, list := range p.idle {
		for _, cn := range list {
			cn.idle.Stop()
			all = append(all, cn)
		}
	}
	p.idle = map[string][]*conn{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, cn := range all {
		wg.Go(cn.close)
	}
	wg.Wait()
}
