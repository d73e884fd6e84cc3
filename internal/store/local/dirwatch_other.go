//go:build !linux

package local

import "errors"

// dirWatch is inotify(7) on Linux (dirwatch_linux.go); elsewhere the store
// finds changes by directory mtimes alone.
type dirWatch struct{}

type watchState int

const (
	notWatched watchState = iota
	unchanged
	changedNames
	relistDir
)

func newDirWatch(string) (*dirWatch, error) {
	return nil, errors.New("no inotify on this system: changes are found by directory mtimes")
}

func (*dirWatch) run(func([]int64))                         {}
func (*dirWatch) close()                                    {}
func (*dirWatch) add(int64, string) bool                    { return false }
func (*dirWatch) settle(int64)                              {}
func (*dirWatch) remove(int64)                              {}
func (*dirWatch) take(int64, string) (watchState, []string) { return notWatched, nil }
func (*dirWatch) more(int64, string) (watchState, []string) { return notWatched, nil }
func (*dirWatch) clean(int64, string) bool                  { return false }
func (*dirWatch) watching(int64, string) bool               { return false }
