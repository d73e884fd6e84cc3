package local

import (
	"context"
	"database/sql"
	"sync"

	"posthorn/internal/store"
)

// snapshots keeps the message lists of recently selected mailboxes, so
// that a SELECT reads only what changed since the last one (rows with a
// higher MODSEQ, and tombstones) instead of every row: about 1 µs a row,
// which made SELECT of a 2,000-message INBOX cost 3 ms and of a
// 57,000-message one 60 ms.
//
// Every change to a message raises its MODSEQ and every expunge leaves a
// tombstone with one (RFC 7162 bookkeeping the index keeps anyway), so
// applying the rows and tombstones above a cached HIGHESTMODSEQ brings a
// cached list up to date; applying one twice does no harm. A different
// UIDVALIDITY, or a HIGHESTMODSEQ lower than the cached one (a mailbox
// deleted and made again under the same id), means a full read.
//
// Cached lists are shared, with callers too: they and their Flags slices
// are never changed in place, only replaced (store.Snapshot says callers
// must not change them). A copy for each SELECT was 144 KiB of garbage
// per session on a 2,000-message mailbox.
type snapshots struct {
	mu    sync.Mutex
	byID  map[int64]*snapEntry
	total int // messages held
	max   int
	clock uint64
}

type snapEntry struct {
	snap store.Snapshot
	used uint64
}

// maxCachedMessages bounds the messages held (about 100 bytes each), and
// maxCachedMailboxes the lists (an eviction scans them all: many small
// mailboxes must not make every SELECT of a new one slow).
const (
	maxCachedMessages  = 500_000
	maxCachedMailboxes = 5_000
)

func (c *snapshots) get(id int64) (store.Snapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byID[id]
	if e == nil {
		return store.Snapshot{}, false
	}
	c.clock++
	e.used = c.clock
	return e.snap, true
}

func (c *snapshots) put(id int64, snap store.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[int64]*snapEntry{}
	}
	if old := c.byID[id]; old != nil {
		if old.snap.HighestModSeq > snap.HighestModSeq {
			return // a newer one got there first
		}
		c.total -= len(old.snap.Messages)
	}
	limit := c.max
	if limit == 0 {
		limit = maxCachedMessages
	}
	if len(snap.Messages) > limit {
		delete(c.byID, id)
		return
	}
	c.clock++
	c.byID[id] = &snapEntry{snap: snap, used: c.clock}
	c.total += len(snap.Messages)
	for c.total > limit || len(c.byID) > maxCachedMailboxes {
		c.evictOldest()
	}
}

func (c *snapshots) evictOldest() {
	var oldest int64
	var at uint64
	first := true
	for id, e := range c.byID {
		if first || e.used < at {
			oldest, at, first = id, e.used, false
		}
	}
	c.total -= len(c.byID[oldest].snap.Messages)
	delete(c.byID, oldest)
}

// drop forgets a mailbox (deleted).
func (c *snapshots) drop(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byID[id]; e != nil {
		c.total -= len(e.snap.Messages)
		delete(c.byID, id)
	}
}

// readSnapshot reads a mailbox's state in one read transaction: from the
// cached list when there is one, else every row.
func (s *Store) readSnapshot(ctx context.Context, id int64) (store.Snapshot, error) {
	t, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return store.Snapshot{}, err
	}
	defer t.Rollback()
	tx := readTx{t, s.rdb}
	var snap store.Snapshot
	if err := tx.QueryRowContext(ctx, `SELECT uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE id = ?`, id).
		Scan(&snap.UIDValidity, &snap.UIDNext, &snap.HighestModSeq); err != nil {
		return snap, err
	}
	cached, ok := s.snaps.get(id)
	switch {
	case ok && cached.UIDValidity == snap.UIDValidity && cached.HighestModSeq == snap.HighestModSeq:
		snap.Messages = cached.Messages
	case ok && cached.UIDValidity == snap.UIDValidity && cached.HighestModSeq < snap.HighestModSeq:
		updated, gone, err := changedSince(ctx, tx, id, cached.HighestModSeq)
		if err != nil {
			return snap, err
		}
		snap.Messages = applyChanges(cached.Messages, updated, gone)
	default:
		if snap.Messages, err = queryMetas(ctx, tx, `WHERE mailbox_id = ? ORDER BY uid`, id); err != nil {
			return snap, err
		}
	}
	s.snaps.put(id, snap)
	return snap, nil // Messages shared with the cache: read-only (store.Snapshot)
}

// applyChanges returns list (UID order) with the updated messages put in
// (replacing the same UID, or added) and the gone UIDs taken out; all three
// are in UID order. list is not modified.
func applyChanges(list, updated []store.MessageMeta, gone []uint32) []store.MessageMeta {
	out := make([]store.MessageMeta, 0, len(list)+len(updated))
	i, j, k := 0, 0, 0
	isGone := func(uid uint32) bool {
		for k < len(gone) && gone[k] < uid {
			k++
		}
		return k < len(gone) && gone[k] == uid
	}
	for i < len(list) || j < len(updated) {
		var m store.MessageMeta
		switch {
		case j == len(updated) || (i < len(list) && list[i].UID < updated[j].UID):
			m = list[i]
			i++
		case i == len(list) || updated[j].UID < list[i].UID:
			m = updated[j]
			j++
		default: // the same UID: the update wins
			m = updated[j]
			i++
			j++
		}
		if !isGone(m.UID) {
			out = append(out, m)
		}
	}
	return out
}
