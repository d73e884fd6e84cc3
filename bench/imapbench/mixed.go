package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The operations of the mixed workload, with their default weights.
var opNames = []string{"SELECT", "FETCH-env", "FETCH-body", "STORE", "SEARCH"}

// opCommand returns the command of operation op for a mailbox of n
// messages:
//
//	SELECT      SELECT INBOX (re-select: the full mailbox state is sent)
//	FETCH-env   FETCH s:s+49 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE) — one page of a message list
//	FETCH-body  FETCH s BODY.PEEK[] — one whole message
//	STORE       STORE s +FLAGS.SILENT (\Flagged) or -FLAGS.SILENT
//	SEARCH      UID SEARCH SUBJECT "word" — a header search over the mailbox
func opCommand(op int, r *rand.Rand, n int) string {
	n = max(n, 1)
	switch opNames[op] {
	case "SELECT":
		return "SELECT INBOX"
	case "FETCH-env":
		s := 1 + r.IntN(max(n-49, 1))
		return fmt.Sprintf("FETCH %d:%d (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)", s, min(s+49, n))
	case "FETCH-body":
		return fmt.Sprintf("FETCH %d BODY.PEEK[]", 1+r.IntN(n))
	case "STORE":
		sign := "+"
		if r.IntN(2) == 0 {
			sign = "-"
		}
		return fmt.Sprintf(`STORE %d %sFLAGS.SILENT (\Flagged)`, 1+r.IntN(n), sign)
	case "SEARCH":
		return "UID SEARCH SUBJECT " + quote(subjectWord(r))
	}
	panic("unknown op")
}

// parseMix reads "SELECT=5,FETCH-env=30,..." into weights.
func parseMix(s string) ([]int, error) {
	w := make([]int, len(opNames))
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("bad -mix item %q", part)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad -mix weight %q", part)
		}
		found := false
		for i, name := range opNames {
			if strings.EqualFold(name, k) {
				w[i], found = n, true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown operation %q in -mix (have %s)", k, strings.Join(opNames, ", "))
		}
	}
	return w, nil
}

// MixedResult is one server's mixed-workload result.
type MixedResult struct {
	Server         string             `json:"server"`
	Clients        int                `json:"clients"`
	Accounts       int                `json:"accounts"`
	Messages       int                `json:"messages"`
	Duration       float64            `json:"duration_s"`
	Warmup         float64            `json:"warmup_s"`
	Mix            string             `json:"mix"`
	Ops            int                `json:"ops"`
	OpsPerSec      float64            `json:"ops_per_sec"`
	PerOp          map[string]summary `json:"per_op"`
	Errors         map[string]int     `json:"errors"`
	FirstErrors    []string           `json:"first_errors,omitempty"`
	ClientsLost    int                `json:"clients_lost"`
	Cut            int                `json:"cut"` // operations still running at the end of the grace time
	Grace          float64            `json:"grace_s"`
	OtherCPU       float64            `json:"other_cpu_pct"` // machine CPU used by neither server nor bench
	ServerCPU      float64            `json:"server_cpu_pct"`
	BenchCPU       float64            `json:"bench_cpu_pct"`
	BytesFetched   int64              `json:"bytes_fetched"`
	SearchHitsMean float64            `json:"search_hits_mean"`
}

type clientStats struct {
	lat      [][]time.Duration
	errs     []int
	cut      []int // operations cut unfinished at the end
	bytes    int64
	hits     int
	searches int
	done     int
	lost     bool
	errText  []string
}

func mixed(args []string) error {
	fs := flag.NewFlagSet("mixed", flag.ExitOnError)
	var sf serverFlags
	sf.register(fs)
	clients := fs.Int("clients", 50, "concurrent clients (spread over the accounts)")
	duration := fs.Duration("duration", 20*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 3*time.Second, "unmeasured warm-up before it")
	mixFlag := fs.String("mix", "SELECT=5,FETCH-env=30,FETCH-body=30,STORE=25,SEARCH=10", "operation weights")
	seed := fs.Uint64("seed", 1, "random seed")
	grace := fs.Duration("grace", 10*time.Second, "after the window, how long operations still running may finish before they are cut")
	kind := fs.String("kind", "mixed", "result kind: mixed, or single (one operation type, see report)")
	_ = fs.Parse(args)
	weights, err := parseMix(*mixFlag)
	if err != nil {
		return err
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	if total == 0 {
		return errors.New("-mix: all weights are zero")
	}
	accts, err := sf.accounts()
	if err != nil {
		return err
	}
	raiseNoFile()

	// Connect and select first, so that logins are not measured.
	conns := make([]*imapConn, *clients)
	exists := make([]int, *clients)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var connErr error
	sem := make(chan struct{}, 8)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := sf.connect(accts[i%len(accts)], 60*time.Second)
			if err == nil {
				var r reply
				r, err = c.run("SELECT INBOX")
				if err == nil && r.status != "OK" {
					err = fmt.Errorf("SELECT: %s %s", r.status, r.text)
				}
				exists[i] = r.exists
			}
			if err != nil {
				mu.Lock()
				connErr = fmt.Errorf("client %d (%s): %w", i, accts[i%len(accts)].user, err)
				mu.Unlock()
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if connErr != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return connErr
	}

	start := time.Now()
	mStart, mEnd := start.Add(*warmup), start.Add(*warmup+*duration)
	cut := mEnd.Add(*grace)
	stats := make([]*clientStats, *clients)
	var cpu0, cpu1 int64
	var self0, self1 time.Duration
	var machine float64
	var cpuWG sync.WaitGroup
	cpuWG.Add(1)
	go func() {
		defer cpuWG.Done()
		time.Sleep(time.Until(mStart))
		if sf.pid > 0 {
			cpu0 = cpuTicks(sf.pid, sf.tree)
		}
		self0 = selfCPU()
		busy0, _ := machineCPU()
		time.Sleep(time.Until(mEnd))
		busy1, _ := machineCPU()
		machine = float64(busy1-busy0) / clockTicks / duration.Seconds() * 100
		if sf.pid > 0 {
			cpu1 = cpuTicks(sf.pid, sf.tree)
		}
		self1 = selfCPU()
	}()
	for i, c := range conns {
		st := &clientStats{lat: make([][]time.Duration, len(opNames)), errs: make([]int, len(opNames)), cut: make([]int, len(opNames))}
		stats[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(*seed, uint64(i)))
			n := exists[i]
			for {
				x, op := r.IntN(total), 0
				for ; x >= weights[op]; op++ {
					x -= weights[op]
				}
				cmd := opCommand(op, r, n)
				t0 := time.Now()
				if !t0.Before(mEnd) {
					break
				}
				_ = c.nc.SetDeadline(cut)
				rep, err := c.run(cmd)
				t1 := time.Now()
				if err != nil {
					if !t1.Before(cut) {
						// Cut unfinished: its time so far counts, as a lower
						// bound (an operation of the warm-up does not count).
						if !t0.Before(mStart) {
							st.lat[op] = append(st.lat[op], t1.Sub(t0))
							st.cut[op]++
						}
					} else {
						st.lost = true
						st.errText = append(st.errText, fmt.Sprintf("%s: %v", opNames[op], err))
					}
					c.Close()
					return
				}
				if rep.exists > 0 {
					n = rep.exists
				}
				// Throughput counts the operations that end in the window;
				// latency every operation started in it, also one that ends
				// after it.
				if !t1.Before(mStart) && !t1.After(mEnd) {
					st.done++
				}
				if t0.Before(mStart) {
					continue
				}
				st.lat[op] = append(st.lat[op], t1.Sub(t0))
				st.bytes += rep.literal
				if rep.status != "OK" {
					st.errs[op]++
					if len(st.errText) < 3 {
						st.errText = append(st.errText, fmt.Sprintf("%s: %s %s", cmd, rep.status, rep.text))
					}
				}
				if opNames[op] == "SEARCH" {
					st.hits += rep.searched
					st.searches++
				}
			}
			_ = c.nc.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.run("LOGOUT")
			c.Close()
		}()
	}
	wg.Wait()
	cpuWG.Wait()

	res := MixedResult{Server: sf.name, Clients: *clients, Accounts: len(accts), Messages: exists[0],
		Duration: duration.Seconds(), Warmup: warmup.Seconds(), Mix: *mixFlag, Grace: grace.Seconds(),
		PerOp: map[string]summary{}, Errors: map[string]int{}}
	searches := 0
	for op, name := range opNames {
		var all []time.Duration
		errs, cuts := 0, 0
		for _, st := range stats {
			all = append(all, st.lat[op]...)
			errs += st.errs[op]
			cuts += st.cut[op]
		}
		s := summarize(all)
		s.Failures = errs
		s.Cut = cuts
		res.Cut += cuts
		res.PerOp[name] = s
		res.Errors[name] = errs
		res.Ops += len(all)
	}
	done := 0
	for _, st := range stats {
		done += st.done
		res.BytesFetched += st.bytes
		res.SearchHitsMean += float64(st.hits)
		searches += st.searches
		if st.lost {
			res.ClientsLost++
		}
		for _, e := range st.errText {
			if len(res.FirstErrors) < 10 {
				res.FirstErrors = append(res.FirstErrors, e)
			}
		}
	}
	if searches > 0 {
		res.SearchHitsMean /= float64(searches)
	} else {
		res.SearchHitsMean = -1
	}
	res.OpsPerSec = float64(done) / duration.Seconds()
	if sf.pid > 0 {
		res.ServerCPU = float64(cpu1-cpu0) / clockTicks / duration.Seconds() * 100
	}
	res.BenchCPU = (self1 - self0).Seconds() / duration.Seconds() * 100
	if sf.pid > 0 {
		res.OtherCPU = max(machine-res.ServerCPU-res.BenchCPU, 0)
	}
	name := sf.name
	if *kind == "single" {
		name += "-" + strings.ReplaceAll(*mixFlag, "=", "")
	}
	if err := saveResult(sf.results, *kind, name, res); err != nil {
		return err
	}
	if *kind == "single" {
		printSingle(os.Stdout, []MixedResult{res})
	} else {
		printMixed(os.Stdout, []MixedResult{res})
	}
	for _, e := range res.FirstErrors {
		fmt.Fprintf(os.Stderr, "  %s error: %s\n", sf.name, e)
	}
	return nil
}
