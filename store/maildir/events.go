package maildir

import (
	"context"
	"sync"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// hub distributes change events to the Watch channels of this Store.
// Changes made through the Store are published as they happen; changes
// made by other programs are published when a scan notices them: on any
// call that reads a folder, and every Options.PollInterval while a
// mailbox is watched.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[*watcher]struct{}
}

type watcher struct {
	ch chan store.Event
}

// watchBuffer: events beyond it are dropped for a slow receiver, which
// still has at least one pending event telling it to re-read the state.
const watchBuffer = 64

func (h *hub) publish(user string, ev store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.subs[user] {
		select {
		case w.ch <- ev:
		default:
		}
	}
}

func (h *hub) watch(ctx context.Context, user string) *watcher {
	w := &watcher{ch: make(chan store.Event, watchBuffer)}
	h.mu.Lock()
	if h.subs[user] == nil {
		h.subs[user] = map[*watcher]struct{}{}
	}
	h.subs[user][w] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		delete(h.subs[user], w)
		if len(h.subs[user]) == 0 {
			delete(h.subs, user)
		}
		close(w.ch)
		h.mu.Unlock()
	}()
	return w
}

// Watch implements store.Mailbox. Events for changes made through this
// Store arrive at once; changes by other processes or programs (another
// Store on the same directory, an MDA writing into new/, a mail client
// renaming files) are noticed by the next operation that reads the folder
// and by a rescan every Options.PollInterval while the channel is open.
func (mb *mailbox) Watch(ctx context.Context) (<-chan store.Event, error) {
	w := mb.s.hub.watch(ctx, mb.user)
	if iv := mb.s.opts.PollInterval; iv > 0 {
		// Learn every folder now, so that the rescans report any
		// change from here on (a first scan reports nothing).
		mb.poll(ctx)
		go func() {
			t := time.NewTicker(iv)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					mb.poll(ctx)
				}
			}
		}()
	}
	return w.ch, nil
}

// poll rescans every folder of the mailbox; refresh publishes what it
// finds.
func (mb *mailbox) poll(ctx context.Context) {
	names, err := mb.folderNames()
	if err != nil {
		return
	}
	for _, n := range names {
		if ctx.Err() != nil {
			return
		}
		f, err := mb.folderState(n)
		if err != nil {
			continue
		}
		f.mu.Lock()
		if err := f.refresh(ctx); err != nil {
			mb.s.log.Debug("maildir: poll", "folder", f.path, "err", err)
		}
		f.mu.Unlock()
	}
}
