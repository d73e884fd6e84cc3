package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"posthorn/internal/message"
)

// ENVELOPE, BODY[HEADER…] and the header search keys need only a
// message's header section. loadHeader reads no further than the blank
// line that ends it, and keeps the result in a server-wide cache. The
// cache needs no invalidation: the octets of a message never change under
// its UIDVALIDITY and UID (RFC 9051 §2.3.1.1), and the store hands out
// each UIDVALIDITY once.

// maxHeaderRead is the longest header section read on its own; a longer
// one is served from the whole message.
const maxHeaderRead = 256 << 10

func noRelease() {}

// loadHeader returns a message whose data is only its header section
// (with the blank line), parsed. The caller must not ask it for body
// sections.
func (c *conn) loadHeader(m Meta) (*fetchedMessage, error) {
	if c.headerUser == 0 {
		c.headerUser = c.s.headers.userID(c.user.Name())
	}
	key := headerKey{user: c.headerUser, uidValidity: c.mbox.uidValidity, uid: m.UID}
	if h, ok := c.s.headers.get(key); ok {
		return &fetchedMessage{data: h.data, root: h.root, release: noRelease}, nil
	}
	content, err := c.user.Open(c.mbox.ctx, c.mbox.name, m.UID)
	if err != nil {
		return nil, c.mapErr(err)
	}
	r, err := content.Reader()
	if err != nil {
		return nil, c.mapErr(err)
	}
	data, err := readHeader(r, maxHeaderRead)
	r.Close()
	if errors.Is(err, errLongHeader) {
		return c.loadMessage(m)
	}
	if err != nil {
		return nil, c.mapErr(err)
	}
	root, err := message.Parse(data, message.Limits{})
	if err != nil {
		return c.loadMessage(m)
	}
	c.s.headers.put(key, cachedHeader{data: data, root: root})
	return &fetchedMessage{data: data, root: root, release: noRelease}, nil
}

var errLongHeader = errors.New("header section too long")

// readHeader reads up to and including the empty line that ends the
// header section (RFC 5322 §2.1), or the whole input if there is none.
func readHeader(r io.Reader, limit int) ([]byte, error) {
	br := bufio.NewReaderSize(r, 4096)
	var out []byte
	atStart := true // line starts a line: a longer one comes in pieces
	for {
		line, err := br.ReadSlice('\n')
		if len(out)+len(line) > limit {
			return nil, errLongHeader
		}
		out = append(out, line...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			atStart = false
			continue
		case errors.Is(err, io.EOF):
			return out, nil
		case err != nil:
			return nil, err
		}
		if atStart && (bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n"))) {
			return out, nil
		}
		atStart = true
	}
}

// headerKey names one message for the cache. The user is a number given
// by the cache (userID): a key of three integers hashes fast, and SEARCH
// looks up thousands in a row.
type headerKey struct {
	user        uint32
	uidValidity uint32
	uid         uint32
}

// cachedHeader is shared by sessions: never modified after put.
type cachedHeader struct {
	data []byte
	root *message.Part
}

// cost estimates the memory of an entry: the octets, the parsed fields
// (about as large again) and bookkeeping.
func (h cachedHeader) cost() int64 { return int64(3*len(h.data)) + 256 }

// headerCache is bounded in bytes and evicts by CLOCK (second chance): a
// hit only sets the entry's reference bit, under a read lock, so that
// sessions searching at once do not queue on one another; eviction, under
// the write lock, passes over entries used since its last pass.
//
// A full cache admits one missed header in eight (admitOneIn): a SEARCH
// over a mailbox larger than the cache would otherwise evict, one by one,
// the very headers its next pass needs (every pass would miss); this way
// repeated passes hit about as often as the cache is large against the
// mailbox, while a header read again and again still gets in soon.
type headerCache struct {
	admit func() bool
	mu    sync.RWMutex
	max   int64
	used  int64
	ring  []*headerEntry // CLOCK order
	hand  int
	items map[headerKey]*headerEntry
	users map[string]uint32
}

type headerEntry struct {
	key headerKey
	val cachedHeader
	ref atomic.Bool
}

// admitOneIn is the share of misses a full cache admits.
const admitOneIn = 8

func newHeaderCache(max int64) *headerCache {
	return &headerCache{max: max, items: map[headerKey]*headerEntry{}, users: map[string]uint32{},
		admit: func() bool { return rand.IntN(admitOneIn) == 0 }}
}

// userID returns the number of a user name (sessions ask once).
func (hc *headerCache) userID(name string) uint32 {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	id, ok := hc.users[name]
	if !ok {
		id = uint32(len(hc.users) + 1)
		hc.users[name] = id
	}
	return id
}

func (hc *headerCache) get(k headerKey) (cachedHeader, bool) {
	hc.mu.RLock()
	e, ok := hc.items[k]
	hc.mu.RUnlock()
	if !ok {
		return cachedHeader{}, false
	}
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	return e.val, true
}

func (hc *headerCache) put(k headerKey, v cachedHeader) {
	if v.cost() > hc.max/16 {
		return // one entry never crowds out most of the others
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if _, ok := hc.items[k]; ok {
		return
	}
	if hc.used+v.cost() > hc.max && !hc.admit() {
		return
	}
	e := &headerEntry{key: k, val: v}
	hc.items[k] = e
	hc.used += v.cost()
	if hc.used <= hc.max {
		hc.ring = append(hc.ring, e)
		return
	}
	// Full: the new entry takes the first victim's slot, just behind the
	// hand, so it has a whole turn before it can be evicted; any further
	// victims (it needed more room) leave the ring.
	hc.ring[hc.victim()] = e
	for hc.used > hc.max {
		hc.removeAt(hc.victim())
	}
}

// victim moves the hand to the first entry not used since the hand last
// passed it, forgets that entry and returns its slot; the hand moves past
// it.
func (hc *headerCache) victim() int {
	for {
		if hc.hand >= len(hc.ring) {
			hc.hand = 0
		}
		i := hc.hand
		hc.hand++
		e := hc.ring[i]
		if e.ref.Load() {
			e.ref.Store(false)
			continue
		}
		delete(hc.items, e.key)
		hc.used -= e.val.cost()
		return i
	}
}

// removeAt takes slot i out of the ring; the last entry fills it.
func (hc *headerCache) removeAt(i int) {
	last := len(hc.ring) - 1
	hc.ring[i] = hc.ring[last]
	hc.ring[last] = nil
	hc.ring = hc.ring[:last]
}
