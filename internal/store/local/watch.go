package local

import "sync"

// watchers fans change notices out to sessions watching a mailbox.
type watchers struct {
	mu    sync.Mutex
	subs  map[int64]map[chan struct{}]struct{}
	poll  sync.Once          // starts the store's one poller (Store.pollWatched)
	dirty map[int64]struct{} // watched mailboxes with inotify events, for the poller
	poke  chan struct{}      // the poller has dirty mailboxes to sync (made by Open)
	// changed: mailboxes notified since the UID marks last looked
	// (uidmarks.go), kept only while a mark writer runs.
	changed map[int64]struct{}
}

// takeChanged returns and forgets the mailboxes notified since the last
// call, and starts recording them.
func (w *watchers) takeChanged() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]int64, 0, len(w.changed))
	for id := range w.changed {
		ids = append(ids, id)
	}
	w.changed = map[int64]struct{}{}
	return ids
}

// wake notes inotify events in the given mailboxes (dirwatch_linux.go):
// those someone watches are synced by the poller at once.
func (w *watchers) wake(ids []int64) {
	w.mu.Lock()
	n := 0
	for _, id := range ids {
		if len(w.subs[id]) > 0 {
			if w.dirty == nil {
				w.dirty = map[int64]struct{}{}
			}
			w.dirty[id] = struct{}{}
			n++
		}
	}
	w.mu.Unlock()
	if n > 0 {
		select {
		case w.poke <- struct{}{}:
		default:
		}
	}
}

// takeDirty returns and forgets the mailboxes wake noted.
func (w *watchers) takeDirty() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]int64, 0, len(w.dirty))
	for id := range w.dirty {
		ids = append(ids, id)
	}
	w.dirty = nil
	return ids
}

// watched returns the mailboxes that someone watches.
func (w *watchers) watched() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]int64, 0, len(w.subs))
	for id := range w.subs {
		ids = append(ids, id)
	}
	return ids
}

func (w *watchers) add(id int64) (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = map[int64]map[chan struct{}]struct{}{}
	}
	if w.subs[id] == nil {
		w.subs[id] = map[chan struct{}]struct{}{}
	}
	w.subs[id][ch] = struct{}{}
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.subs[id], ch)
		if len(w.subs[id]) == 0 {
			delete(w.subs, id)
		}
	}
}

// notify wakes every watcher of mailbox id; notices coalesce.
func (w *watchers) notify(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed != nil {
		w.changed[id] = struct{}{}
	}
	for ch := range w.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
