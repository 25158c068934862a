package imapbackend

import (
	"container/list"
	"sync"

	"github.com/emersion/go-imap/v2"

	"github.com/mailblocks/mailblocks/store"
)

// msgKey names one message for ever: a UID is never reused while the
// folder's UIDVALIDITY stays the same (RFC 3501 2.3.1.1), so cached
// parses never go stale.
type msgKey struct {
	user, folder string
	uidValidity  uint32
	uid          store.UID
}

// parsed is what FETCH and SEARCH need of a message besides its body.
type parsed struct {
	header []byte // raw header with its blank line; nil if unknown
	env    *imap.Envelope
	bs     imap.BodyStructure // extended form
}

// maxCachedHeader keeps pathological headers out of the cache.
const maxCachedHeader = 16 << 10

// msgCache is a bounded LRU of parsed messages shared by sessions.
type msgCache struct {
	max int
	mu  sync.Mutex
	ll  *list.List // of *cacheEntry, most recent first
	m   map[msgKey]*list.Element
}

type cacheEntry struct {
	key msgKey
	p   parsed
}

func newMsgCache(max int) *msgCache {
	if max <= 0 {
		return nil
	}
	return &msgCache{max: max, ll: list.New(), m: map[msgKey]*list.Element{}}
}

func (c *msgCache) get(k msgKey) parsed {
	if c == nil {
		return parsed{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheEntry).p
	}
	return parsed{}
}

// put merges what is known of a message into the cache.
func (c *msgCache) put(k msgKey, p parsed) {
	if c == nil {
		return
	}
	if len(p.header) > maxCachedHeader {
		p.header = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		old := &e.Value.(*cacheEntry).p
		if p.header != nil {
			old.header = p.header
		}
		if p.env != nil {
			old.env = p.env
		}
		if p.bs != nil {
			old.bs = p.bs
		}
		c.ll.MoveToFront(e)
		return
	}
	c.m[k] = c.ll.PushFront(&cacheEntry{key: k, p: p})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*cacheEntry).key)
	}
}
