package local

import (
	"os"
	"sync"
)

// syncer fsyncs directories for many callers at once. Every caller gets an
// fsync that started after its request, but requests that arrive while one
// runs share the next one (group commit for directory entries).
type syncer struct {
	reqs chan syncReq
	quit chan struct{}
	done chan struct{}
}

type syncReq struct {
	dir string
	res chan error
}

func newSyncer() *syncer {
	y := &syncer{reqs: make(chan syncReq, 256), quit: make(chan struct{}), done: make(chan struct{})}
	go y.run()
	return y
}

// sync returns when dir has been fsynced after the call began.
func (y *syncer) sync(dir string) error {
	r := syncReq{dir: dir, res: make(chan error, 1)}
	select {
	case y.reqs <- r:
		return <-r.res
	case <-y.quit:
		return syncDir(dir) // store closing: do it ourselves
	}
}

func (y *syncer) close() {
	close(y.quit)
	<-y.done
}

func (y *syncer) run() {
	defer close(y.done)
	for {
		var first syncReq
		select {
		case first = <-y.reqs:
		case <-y.quit:
			return
		}
		batch := map[string][]chan error{first.dir: {first.res}}
	more:
		for {
			select {
			case r := <-y.reqs:
				batch[r.dir] = append(batch[r.dir], r.res)
			default:
				break more
			}
		}
		y.syncAll(batch)
	}
}

// syncAll fsyncs the directories of one batch in parallel.
func (y *syncer) syncAll(batch map[string][]chan error) {
	var wg sync.WaitGroup
	for dir, waiters := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := syncDir(dir)
			for _, w := range waiters {
				w <- err
			}
		}()
	}
	wg.Wait()
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
