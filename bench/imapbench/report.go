package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

var serverOrder = []string{"posthorn", "dovecot"}

func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	dir := fs.String("results", "", "directory of the JSON results")
	_ = fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("report needs -results")
	}
	if m := loadResults[MixedResult](*dir, "mixed", serverOrder); len(m) > 0 {
		printMixed(os.Stdout, m)
		fmt.Println()
	}
	if s := loadResults[MixedResult](*dir, "single", serverOrder); len(s) > 0 {
		printSingle(os.Stdout, s)
		fmt.Println()
	}
	for _, kind := range []string{"idle", "idlebig"} {
		if r := loadResults[IdleResult](*dir, kind, serverOrder); len(r) > 0 {
			printIdle(os.Stdout, r)
			fmt.Println()
		}
	}
	if l := loadResults[LatencyResult](*dir, "latency", serverOrder); len(l) > 0 {
		printLatency(os.Stdout, l)
	}
	return nil
}

func printMixed(w io.Writer, rs []MixedResult) {
	r0 := rs[0]
	fmt.Fprintf(w, "IMAP mixed workload, %d clients (%d accounts × %d), %d messages per INBOX, %.0fs measured after %.0fs warm-up\n",
		r0.Clients, r0.Accounts, r0.Clients/max(r0.Accounts, 1), r0.Messages, r0.Duration, r0.Warmup)
	fmt.Fprintf(w, "mix %s; latencies in ms (p50/p99)\n", r0.Mix)
	t := newTable(w)
	head := []string{"server", "ops/s"}
	for _, op := range opNames {
		head = append(head, op)
	}
	head = append(head, "errors", "server CPU", "bench CPU", "other CPU")
	fmt.Fprintln(t, strings.Join(head, "\t"))
	for _, r := range rs {
		row := []string{r.Server, fmt.Sprintf("%.0f", r.OpsPerSec)}
		errs := 0
		for _, op := range opNames {
			s := r.PerOp[op]
			if s.N == 0 {
				row = append(row, "-")
				continue
			}
			cell := fmtMs(s.P50ms) + " / " + fmtMs(s.P99ms)
			if s.Cut > 0 {
				cell = "≥" + cell
			}
			row = append(row, cell)
			errs += r.Errors[op]
		}
		e := fmt.Sprint(errs)
		if r.ClientsLost > 0 {
			e += fmt.Sprintf(" (+%d lost)", r.ClientsLost)
		}
		row = append(row, e, fmt.Sprintf("%.0f%%", r.ServerCPU), fmt.Sprintf("%.0f%%", r.BenchCPU), fmt.Sprintf("%.0f%%", r.OtherCPU))
		fmt.Fprintln(t, strings.Join(row, "\t"))
	}
	t.Flush()
	for _, r := range rs {
		if r.OtherCPU > 25 {
			fmt.Fprintf(w, "! %s: other processes used %.0f%% CPU during the window (of %d00%%): the machine was not quiet, compare with care.\n",
				r.Server, r.OtherCPU, runtime.NumCPU())
		}
		if r.Cut > 0 {
			fmt.Fprintf(w, "≥ %s: %d operations were still running %.0fs after the window and were cut; their time so far is counted, so those figures are lower bounds.\n",
				r.Server, r.Cut, r.Grace)
		}
	}
	fmt.Fprint(w, "ops per type:")
	for _, r := range rs {
		fmt.Fprintf(w, "  %s", r.Server)
		for _, op := range opNames {
			fmt.Fprintf(w, " %s=%d", op, r.PerOp[op].N)
		}
		hits := "no SEARCH completed"
		if r.SearchHitsMean >= 0 {
			hits = fmt.Sprintf("%.0f hits per SEARCH", r.SearchHitsMean)
		}
		fmt.Fprintf(w, " (%.0f MB fetched, %s);", float64(r.BytesFetched)/1e6, hits)
	}
	fmt.Fprintln(w)
}

func printIdle(w io.Writer, rs []IdleResult) {
	fmt.Fprintf(w, "Idle IMAP connections: STARTTLS, logged in, INBOX (%d messages) selected, in IDLE; %d over %d accounts\n",
		rs[0].Messages, rs[0].Wanted, rs[0].Accounts)
	t := newTable(w)
	fmt.Fprintln(t, "server\topen\tfailed\topen time\theld\tprocs\tRSS before\tRSS +3s\tRSS end\tRSS/conn +3s\tRSS/conn end\tPSS/conn end\tCPU while idle")
	for _, r := range rs {
		fmt.Fprintf(t, "%s\t%d\t%d\t%.1fs\t%.0fs\t%d\t%s\t%s\t%s\t%.1f KiB\t%.1f KiB\t%.1f KiB\t%.1f%%\n", r.Server, r.Open, r.Failed, r.OpenSeconds,
			r.HoldSeconds, r.After.Procs, fmtKiB(r.Before.RSSKiB), fmtKiB(r.Early.RSSKiB), fmtKiB(r.After.RSSKiB),
			r.EarlyRSSConn, r.RSSPerConn, r.PSSPerConn, r.IdleCPU)
	}
	t.Flush()
	for _, r := range rs {
		if r.Tree {
			fmt.Fprintf(w, "%s is multi-process (%d processes at the end): RSS is summed over them, counting shared pages once per process; PSS shares those pages out and is the fair figure.\n",
				r.Server, r.After.Procs)
		} else {
			fmt.Fprintf(w, "%s is one process; its peak RSS during the hold was %s.\n", r.Server, fmtKiB(r.PeakRSSKiB))
		}
	}
}

func printLatency(w io.Writer, rs []LatencyResult) {
	fmt.Fprintf(w, "Delivery → IDLE latency, %d samples in %d parallel streams (one account each): final 250 of the delivery → \"* N EXISTS\" on an idling client (ms)\n",
		rs[0].Samples, rs[0].Streams)
	t := newTable(w)
	fmt.Fprintln(t, "server\tdelivered by\tsamples\tp50\tp99\tmax\tdelivery p50/p99\ttimeouts\tEXISTS before 250")
	for _, r := range rs {
		fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%s\t%s\t%s / %s\t%d\t%d\n", r.Server, strings.ToUpper(r.Via), r.Latency.N,
			fmtMs(r.Latency.P50ms), fmtMs(r.Latency.P99ms), fmtMs(r.Latency.MaxMs),
			fmtMs(r.Delivery.P50ms), fmtMs(r.Delivery.P99ms), r.Timeouts, r.Early)
	}
	t.Flush()
}

// printSingle shows one-client runs of one operation type each, a row per
// server.
func printSingle(w io.Writer, rs []MixedResult) {
	var servers []string
	cells := map[string]map[string]string{}
	for _, r := range rs {
		if cells[r.Server] == nil {
			cells[r.Server] = map[string]string{}
			servers = append(servers, r.Server)
		}
		for _, op := range opNames {
			if s := r.PerOp[op]; s.N > 0 {
				cells[r.Server][op] = fmt.Sprintf("%s / %s (%.0f/s)", fmtMs(s.P50ms), fmtMs(s.P99ms), float64(s.N)/r.Duration)
			}
		}
	}
	fmt.Fprintf(w, "One client, one operation type at a time, %.0fs each: latency p50 / p99 in ms (ops/s)\n", rs[0].Duration)
	t := newTable(w)
	fmt.Fprintln(t, "server\t"+strings.Join(opNames, "\t"))
	for _, sv := range servers {
		row := []string{sv}
		for _, op := range opNames {
			c := cells[sv][op]
			if c == "" {
				c = "-"
			}
			row = append(row, c)
		}
		fmt.Fprintln(t, strings.Join(row, "\t"))
	}
	t.Flush()
}
