package local

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// group runs one operation (an fsync, a commit) on behalf of many callers:
// every caller returns after a run that began after its call, so its own
// work is covered, but callers that arrive while a run is under way share
// the next one (group commit). The caller that finds nobody running does
// the run itself, on its own goroutine: a lone caller never waits for
// another goroutine to be scheduled.
type group struct {
	mu      sync.Mutex
	cond    sync.Cond
	running bool
	started uint64 // runs begun
	done    uint64 // runs finished
	errRun  uint64 // the last run that failed
	err     error  // its error
}

// do returns when a run of fn that began after the call has finished, with
// that run's error (or a later failed run's: errors are never hidden).
func (g *group) do(fn func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	need := g.started + 1 // the first run that will begin after now
	for g.done < need {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		run := g.started
		g.mu.Unlock()
		err := runSafely(fn)
		g.mu.Lock()
		g.running, g.done = false, run
		if err != nil {
			g.errRun, g.err = run, err
		}
		g.cond.Broadcast()
	}
	if g.errRun >= need {
		return g.err
	}
	return nil
}

// runSafely runs fn and turns a panic into its error: a panic in a run
// would leave the group running for ever (and its deferred unlock would
// unlock an unlocked mutex, which no recover can catch). It is counted
// in Store.Panics; the error reaches the caller's log, never a client.
func runSafely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			groupPanics.Add(1)
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}

// groupPanics counts panics in group runs, for Store.Panics.
var groupPanics atomic.Int64

// syncer fsyncs directories for many callers at once, one group per
// directory: the entries renamed into new/ by concurrent deliveries are
// made durable by one fsync of new/.
type syncer struct {
	mu     sync.Mutex
	groups map[string]*group
	fsync  func(dir string) error // syncDir; tests make it fail
}

// maxSyncGroups bounds the directories remembered; past it, the map starts
// afresh. (A caller still holding a forgotten group is not harmed: every
// run it waits for began after its call.)
const maxSyncGroups = 4096

func newSyncer() *syncer { return &syncer{groups: map[string]*group{}, fsync: syncDir} }

// sync returns when dir has been fsynced after the call began.
func (y *syncer) sync(dir string) error {
	return y.group(dir).do(func() error { return y.fsync(dir) })
}

func (y *syncer) group(dir string) *group {
	y.mu.Lock()
	defer y.mu.Unlock()
	g := y.groups[dir]
	if g == nil {
		if len(y.groups) >= maxSyncGroups {
			y.groups = map[string]*group{}
		}
		g = &group{}
		y.groups[dir] = g
	}
	return g
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
