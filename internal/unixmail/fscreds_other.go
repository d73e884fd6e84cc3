//go:build !linux

package unixmail

import (
	"errors"
	"runtime"
)

// fsCredsPerThread is false: other systems have no per-thread
// filesystem ids, and changing the process's ids would change them for
// every delivery at once.
const fsCredsPerThread = false

// runAsUser cannot check with u's rights here, so it refuses.
func runAsUser(u User, fn func() error) error {
	return errors.New("writing with a user's rights needs Linux (per-thread filesystem ids), not " + runtime.GOOS)
}
