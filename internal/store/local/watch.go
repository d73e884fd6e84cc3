package local

import "sync"

// watchers fans change notices out to sessions watching a mailbox.
type watchers struct {
	mu      sync.Mutex
	subs    map[int64]map[chan struct{}]struct{}
	pollers map[int64]bool // mailboxes with a running poller
}

// startPoller reports whether the caller must start the poller of id
// (none runs yet).
func (w *watchers) startPoller(id int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pollers == nil {
		w.pollers = map[int64]bool{}
	}
	if w.pollers[id] {
		return false
	}
	w.pollers[id] = true
	return true
}

// pollerDone reports whether the poller of id must stop: forced, or
// nobody watches any more. When it must, it is marked stopped.
func (w *watchers) pollerDone(id int64, force bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if force || len(w.subs[id]) == 0 {
		delete(w.pollers, id)
		return true
	}
	return false
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
	for ch := range w.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
