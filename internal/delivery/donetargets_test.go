package delivery

import (
	"fmt"
	"testing"
	"time"
)

// TestDoneTargetsBounded: entries go when their recipient is done, after
// doneTTL, and never number more than maxDone.
func TestDoneTargetsBounded(t *testing.T) {
	t.Parallel()
	var d doneTargets
	now := time.Now()
	d.add("m1", "r", "/var/mail/u", now)
	if !d.has("m1", "r", "/var/mail/u") || d.has("m1", "r", "|cmd") || d.has("m2", "r", "/var/mail/u") {
		t.Fatal("has() wrong")
	}
	d.forget("m1", "r")
	if d.has("m1", "r", "/var/mail/u") {
		t.Error("forget kept the entry")
	}
	d.add("old", "r", "t", now.Add(-doneTTL-time.Hour))
	for i := range maxDone + 10 {
		d.add(fmt.Sprint("m", i), "r", "t", now)
	}
	if len(d.m) > maxDone {
		t.Errorf("%d entries, want at most %d", len(d.m), maxDone)
	}
	if d.has("old", "r", "t") {
		t.Error("an entry past doneTTL survived pruning")
	}
}
