package imap

import (
	"bufio"
	"bytes"
	"container/list"
	"errors"
	"io"
	"sync"

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
	key := headerKey{user: c.user.Name(), uidValidity: c.mbox.uidValidity, uid: m.UID}
	if h, ok := c.s.headers.get(key); ok {
		return &fetchedMessage{data: h.data, root: h.root, release: noRelease}, nil
	}
	content, err := c.user.Open(c.ctx, c.mbox.name, m.UID)
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
	for {
		line, err := br.ReadSlice('\n')
		if len(out)+len(line) > limit {
			return nil, errLongHeader
		}
		out = append(out, line...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return out, nil
		case err != nil:
			return nil, err
		}
		if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) {
			return out, nil
		}
	}
}

// headerKey names one message for the cache.
type headerKey struct {
	user        string
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

// headerCache is a least-recently-used cache bounded in bytes.
type headerCache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // front: most recent; values are *headerEntry
	items map[headerKey]*list.Element
}

type headerEntry struct {
	key headerKey
	val cachedHeader
}

func newHeaderCache(max int64) *headerCache {
	return &headerCache{max: max, order: list.New(), items: map[headerKey]*list.Element{}}
}

func (hc *headerCache) get(k headerKey) (cachedHeader, bool) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	e, ok := hc.items[k]
	if !ok {
		return cachedHeader{}, false
	}
	hc.order.MoveToFront(e)
	return e.Value.(*headerEntry).val, true
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
	hc.items[k] = hc.order.PushFront(&headerEntry{key: k, val: v})
	hc.used += v.cost()
	for hc.used > hc.max {
		last := hc.order.Back()
		ent := last.Value.(*headerEntry)
		hc.order.Remove(last)
		delete(hc.items, ent.key)
		hc.used -= ent.val.cost()
	}
}
