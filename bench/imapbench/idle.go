package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// IdleResult is one server's idle-connection memory result.
type IdleResult struct {
	Server      string   `json:"server"`
	Wanted      int      `json:"wanted"`
	Open        int      `json:"open"`
	Failed      int      `json:"failed"`
	FirstErrors []string `json:"first_errors,omitempty"`
	Accounts    int      `json:"accounts"`
	OpenSeconds float64  `json:"open_s"`
	Before      memUsage `json:"before"`
	After       memUsage `json:"after"`
	RSSPerConn  float64  `json:"rss_per_conn_kib"`
	PSSPerConn  float64  `json:"pss_per_conn_kib"`
	// Early is the memory -settle after the last connection opened; After
	// is at the end of -hold (the per-connection figures use After).
	Early        memUsage `json:"early"`
	EarlyRSSConn float64  `json:"early_rss_per_conn_kib"`
	PeakRSSKiB   int64    `json:"peak_rss_kib"`
	HoldSeconds  float64  `json:"hold_s"`
	IdleCPU      float64  `json:"idle_cpu_pct"` // server CPU during the hold
	Kind         string   `json:"kind"`
	Messages     int      `json:"messages"` // INBOX size of the first session
	Tree         bool     `json:"tree"`
	NoFile       uint64   `json:"client_nofile"`
}

func idle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var sf serverFlags
	sf.register(fs)
	n := fs.Int("conns", 5000, "connections to hold in IDLE")
	parallel := fs.Int("parallel", 16, "connections being opened at once")
	settle := fs.Duration("settle", 3*time.Second, "wait after the last connection before the early measurement")
	kind := fs.String("kind", "idle", "result kind (idle, or idlebig for the large-INBOX variant)")
	openedFile := fs.String("opened-file", "", "create this file once every connection is open (for scripts)")
	hold := fs.Duration("hold", 60*time.Second, "keep the connections idle this long (from the last one opened) before the final measurement")
	_ = fs.Parse(args)
	if sf.pid <= 0 {
		return fmt.Errorf("idle needs -pid")
	}
	accts, err := sf.accounts()
	if err != nil {
		return err
	}
	nofile := raiseNoFile()
	if nofile < uint64(*n)+100 {
		fmt.Fprintf(os.Stderr, "imapbench: RLIMIT_NOFILE is %d, fewer than %d connections will open\n", nofile, *n)
	}
	time.Sleep(500 * time.Millisecond)
	before := measureMem(sf.pid, sf.tree)

	start := time.Now()
	conns := make([]*imapConn, *n)
	msgs := make([]int, *n)
	var failed atomic.Int64
	var mu sync.Mutex
	var firstErrs []string
	var wg sync.WaitGroup
	sem := make(chan struct{}, *parallel)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, exists, err := openIdle(&sf, accts[i%len(accts)])
			if err != nil {
				failed.Add(1)
				mu.Lock()
				if len(firstErrs) < 5 {
					firstErrs = append(firstErrs, err.Error())
				}
				mu.Unlock()
				return
			}
			conns[i], msgs[i] = c, exists
		}()
	}
	wg.Wait()
	openTime := time.Since(start)
	opened := time.Now()
	if *openedFile != "" {
		_ = os.WriteFile(*openedFile, nil, 0o644)
	}
	time.Sleep(*settle)
	early := measureMem(sf.pid, sf.tree)
	cpu0, t0 := cpuTicks(sf.pid, sf.tree), time.Now()
	peak := early.RSSKiB
	for time.Since(opened) < *hold {
		time.Sleep(min(5*time.Second, max(*hold-time.Since(opened), 0)))
		if !sf.tree { // a tree of thousands of processes is only read at the ends
			peak = max(peak, measureMem(sf.pid, false).RSSKiB)
		}
	}
	after := measureMem(sf.pid, sf.tree)
	idleCPU := float64(cpuTicks(sf.pid, sf.tree)-cpu0) / clockTicks / time.Since(t0).Seconds() * 100
	peak = max(peak, after.RSSKiB)
	open := 0
	for _, c := range conns {
		if c != nil {
			open++
		}
	}
	res := IdleResult{Server: sf.name, Wanted: *n, Open: open, Failed: int(failed.Load()), FirstErrors: firstErrs,
		Accounts: len(accts), OpenSeconds: openTime.Seconds(), Before: before, After: after, Tree: sf.tree, NoFile: nofile,
		Early: early, PeakRSSKiB: peak, HoldSeconds: time.Since(opened).Seconds(), IdleCPU: idleCPU,
		Kind: *kind, Messages: msgs[0]}
	if open > 0 {
		res.RSSPerConn = float64(after.RSSKiB-before.RSSKiB) / float64(open)
		res.PSSPerConn = float64(after.PSSKiB-before.PSSKiB) / float64(open)
		res.EarlyRSSConn = float64(early.RSSKiB-before.RSSKiB) / float64(open)
	}
	// End the sessions politely, in parallel.
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = c.nc.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.bw.WriteString("DONE\r\n")
			_, _ = c.run("LOGOUT")
			c.Close()
		}()
	}
	wg.Wait()
	if err := saveResult(sf.results, *kind, sf.name, res); err != nil {
		return err
	}
	printIdle(os.Stdout, []IdleResult{res})
	for _, e := range firstErrs {
		fmt.Fprintf(os.Stderr, "  %s error: %s\n", sf.name, e)
	}
	return nil
}

// openIdle logs in, selects INBOX and starts IDLE; it returns the INBOX
// size too.
func openIdle(sf *serverFlags, a *account) (*imapConn, int, error) {
	c, err := sf.connect(a, 60*time.Second)
	if err != nil {
		return nil, 0, err
	}
	_ = c.nc.SetDeadline(time.Now().Add(60 * time.Second))
	r, err := c.run("SELECT INBOX")
	if err == nil && r.status != "OK" {
		err = fmt.Errorf("SELECT: %s %s", r.status, r.text)
	}
	if err == nil {
		_, err = c.startIdle()
	}
	if err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("%s: %w", a.user, err)
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, r.exists, nil
}
