package local

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// dirCache keeps the answers to the lookups every message makes: is this
// domain ours, this account, these alias targets, this Sieve script.
// Without it each SMTP transaction ran five or six read queries.
//
// Admin commands change the directory from their own processes, so an
// in-process notice is not enough. Every change rewrites DATA/directory.json
// by rename (writeDir), and that file's identity (inode, mtime, size) is
// the cache's generation: a lookup stats it, and a different identity
// empties the cache. Changes made here also empty it directly, before the
// copy is saved. Entries live at most dirCacheTTL, in case a copy could
// not be saved; without the file (stat fails) nothing is cached.
//
// Only answers are cached: found, or not found. Errors never are.
type dirCache struct {
	path string
	ttl  time.Duration
	max  int

	mu     sync.Mutex
	gen    dirGen
	filled time.Time
	m      map[string]any
}

// dirGen identifies one version of the directory: the copy's identity
// on disk (each save is a new file renamed into place), and the changes
// made by this process.
type dirGen struct {
	ino   uint64
	size  int64
	mtime int64
	local uint64
}

const (
	dirCacheTTL = 5 * time.Second
	dirCacheMax = 100_000 // entries; a full cache is emptied
)

func newDirCache(dataDir string) *dirCache {
	return &dirCache{path: filepath.Join(dataDir, directoryFile), ttl: dirCacheTTL, max: dirCacheMax}
}

// current returns the directory's generation, or false when it cannot be
// known (no copy on disk).
func (c *dirCache) current() (dirGen, bool) {
	fi, err := os.Stat(c.path)
	if err != nil {
		return dirGen{}, false
	}
	g := dirGen{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		g.ino = uint64(st.Ino)
	}
	c.mu.Lock()
	g.local = c.gen.local
	c.mu.Unlock()
	return g, true
}

// get returns the cached answer for key, or load's, caching it when ok
// says it may be. The generation is taken before load runs, so an answer
// read while a change was committed is stored under the old generation
// and never served after the change is seen.
func get[T any](c *dirCache, key string, load func() (T, bool, error)) (T, error) {
	gen, known := c.current()
	if known {
		if v, ok := c.lookup(gen, key); ok {
			return v.(T), nil
		}
	}
	v, cacheable, err := load()
	if err == nil && cacheable && known {
		c.store(gen, key, v)
	}
	return v, err
}

func (c *dirCache) lookup(gen dirGen, key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if gen != c.gen || now.Sub(c.filled) > c.ttl {
		c.gen, c.filled, c.m = gen, now, nil
		return nil, false
	}
	v, ok := c.m[key]
	return v, ok
}

func (c *dirCache) store(gen dirGen, key string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // the directory changed while v was read
	}
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]any)
	}
	c.m[key] = v
}

// changed empties the cache after a change made by this process.
func (c *dirCache) changed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.local++
	c.m = nil
}
