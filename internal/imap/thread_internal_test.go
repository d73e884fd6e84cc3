package imap

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestReferencesRandom: whatever the References (cycles, self-references,
// duplicate and missing Message-IDs), every message comes out exactly
// once, no dummy is left without two children or below the root, and
// the tree has no cycle.
func TestReferencesRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		n := 1 + rng.IntN(40)
		ids := func() string { return fmt.Sprintf("m%d", rng.IntN(n+5)) }
		var msgs []*threadMsg
		for i := range n {
			m := &threadMsg{seq: i, date: time.Unix(int64(rng.IntN(10)), 0)}
			if rng.IntN(5) > 0 {
				m.id = ids()
			}
			for range rng.IntN(4) {
				m.refs = append(m.refs, ids())
			}
			m.subject, m.reply = []string{"", "a", "b", "A"}[rng.IntN(4)], rng.IntN(2) == 0
			msgs = append(msgs, m)
		}
		refs, err := references(msgs)
		if err != nil {
			t.Fatal(err)
		}
		for _, roots := range [][]*threadNode{refs, orderedSubject(msgs)} {
			seen := map[int]int{}
			var walk func(nd *threadNode, depth int, root bool)
			walk = func(nd *threadNode, depth int, root bool) {
				if depth > n+2 {
					t.Fatalf("round %d: a cycle", round)
				}
				if nd.dummy() && (!root || len(nd.children) < 2) {
					t.Fatalf("round %d: a dummy with %d children (root %v)", round, len(nd.children), root)
				}
				if !nd.dummy() {
					seen[nd.msg.seq]++
				}
				for _, ch := range nd.children {
					walk(ch, depth+1, false)
				}
			}
			for _, r := range roots {
				walk(r, 0, true)
			}
			for i := range n {
				if seen[i] != 1 {
					t.Fatalf("round %d: message %d appears %d times", round, i, seen[i])
				}
			}
		}
	}
}

// TestReferencesLongChain: a 20,000-message reply chain, each message
// naming its last 100 ancestors and delivered newest first (so parents
// arrive after their children), threads in well under a second.
func TestReferencesLongChain(t *testing.T) {
	t.Parallel()
	const n = 20000
	var msgs []*threadMsg
	for i := n - 1; i >= 0; i-- {
		m := &threadMsg{seq: n - 1 - i, id: fmt.Sprint("m", i), date: time.Unix(int64(i), 0), subject: "s"}
		for j := max(0, i-100); j < i; j++ {
			m.refs = append(m.refs, fmt.Sprint("m", j))
		}
		msgs = append(msgs, m)
	}
	start := time.Now()
	roots, err := references(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("threading took %v", d)
	}
	depth := 0
	for nd := roots[0]; ; nd = nd.children[0] {
		depth++
		if len(nd.children) != 1 {
			break
		}
	}
	if len(roots) != 1 || depth != n {
		t.Errorf("%d roots, chain of %d; want 1 and %d", len(roots), depth, n)
	}
}
