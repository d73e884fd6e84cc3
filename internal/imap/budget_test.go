package imap

import (
	"context"
	"testing"
	"time"
)

func TestBudgetWaitsAndCancels(t *testing.T) {
	b := newBudget(100)
	r1, err := b.acquire(context.Background(), 80)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		r2, err := b.acquire(context.Background(), 50)
		if err == nil {
			r2()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second acquire did not wait for the budget")
	case <-time.After(50 * time.Millisecond):
	}
	r1()
	select {
	case <-got:
	case <-time.After(time.Second):
		t.Fatal("second acquire still waiting after release")
	}
	// More than the whole budget is served alone; a cancelled wait returns.
	big, err := b.acquire(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(ctx, 1); err == nil {
		t.Error("acquire over a spent budget did not honour its context")
	}
	big()
	if b.used != 0 {
		t.Errorf("used = %d after all releases", b.used)
	}
}
