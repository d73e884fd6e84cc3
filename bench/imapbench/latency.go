package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

// LatencyResult is one server's delivery-to-IDLE result.
type LatencyResult struct {
	Server      string   `json:"server"`
	Via         string   `json:"via"`
	Samples     int      `json:"samples"`
	Streams     int      `json:"streams"`
	Latency     summary  `json:"latency"`  // final 250 → "* N EXISTS"
	Delivery    summary  `json:"delivery"` // MAIL FROM … final 250: the whole transaction
	Early       int      `json:"exists_before_reply"`
	Timeouts    int      `json:"timeouts"`
	FirstErrors []string `json:"first_errors,omitempty"`
}

type existsEvent struct {
	n int
	t time.Time
}

// streamResult is what one account's stream measured.
type streamResult struct {
	lat, dlv []time.Duration
	early    int
	timeouts int
	err      error
}

func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	var sf serverFlags
	sf.register(fs)
	via := fs.String("deliver", "smtp", "smtp or lmtp")
	daddr := fs.String("deliver-addr", "", "SMTP or LMTP address host:port")
	samples := fs.Int("samples", 200, "deliveries, over all streams")
	gap := fs.Duration("gap", 20*time.Millisecond, "pause between the samples of a stream")
	timeout := fs.Duration("timeout", 10*time.Second, "longest wait for EXISTS")
	_ = fs.Parse(args)
	accts, err := sf.accounts()
	if err != nil {
		return err
	}
	// One stream per account (-user-n): an idling session and a delivery
	// connection of its own; the streams run side by side.
	per := (*samples + len(accts) - 1) / len(accts)
	results := make([]streamResult, len(accts))
	var wg sync.WaitGroup
	for i, a := range accts {
		n := min(per, *samples-i*per)
		if n <= 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = latencyStream(&sf, a, *via, *daddr, n, *gap, *timeout, uint64(i))
		}()
	}
	wg.Wait()
	res := LatencyResult{Server: sf.name, Via: *via, Samples: *samples, Streams: len(accts)}
	var lat, dlv []time.Duration
	for _, r := range results {
		lat = append(lat, r.lat...)
		dlv = append(dlv, r.dlv...)
		res.Early += r.early
		res.Timeouts += r.timeouts
		if r.err != nil {
			res.FirstErrors = append(res.FirstErrors, r.err.Error())
		}
	}
	res.Latency = summarize(lat)
	res.Delivery = summarize(dlv)
	if err := saveResult(sf.results, "latency", sf.name, res); err != nil {
		return err
	}
	printLatency(os.Stdout, []LatencyResult{res})
	for _, e := range res.FirstErrors {
		fmt.Fprintf(os.Stderr, "  %s error: %s\n", sf.name, e)
	}
	return nil
}

// latencyStream delivers n messages to a, one at a time, each timed from
// the final reply of the delivery to the EXISTS of an IDLE session on a's
// INBOX.
func latencyStream(sf *serverFlags, a *account, via, daddr string, n int, gap, timeout time.Duration, seed uint64) (out streamResult) {
	c, err := sf.connect(a, 60*time.Second)
	if err != nil {
		out.err = err
		return out
	}
	defer c.Close()
	r, err := c.run("SELECT INBOX")
	if err != nil || r.status != "OK" {
		out.err = fmt.Errorf("SELECT: %v %s %s", err, r.status, r.text)
		return out
	}
	base := r.exists
	if _, err := c.startIdle(); err != nil {
		out.err = err
		return out
	}
	events := make(chan existsEvent, 1024)
	go func() {
		defer close(events)
		for {
			line, err := c.readLine()
			if err != nil {
				return
			}
			if n, ok := parseExists(line); ok {
				events <- existsEvent{n, time.Now()}
			}
		}
	}()
	d, err := dialSMTP(daddr, via == "lmtp", 30*time.Second)
	if err != nil {
		out.err = err
		return out
	}
	defer d.Close()
	rng := rand.New(rand.NewPCG(99, seed))
	seen := base
	for i := 1; i <= n; i++ {
		msg := smallMessage(rng, 100000+i, a.user, time.Now())
		sent := time.Now()
		t0, err := d.send("sender@example.net", []string{a.user}, msg, 30*time.Second)
		if err != nil {
			out.err = err
			break
		}
		out.dlv = append(out.dlv, t0.Sub(sent))
		want := base + i
		// Events carry their arrival time: an EXISTS that came before the
		// reply counts with a negative latency.
		var t1 time.Time
		deadline := time.NewTimer(timeout)
		for t1.IsZero() && seen < want {
			select {
			case ev, ok := <-events:
				if !ok {
					deadline.Stop()
					out.err = fmt.Errorf("%s: IMAP connection closed after %d samples", a.user, i-1)
					return out
				}
				seen = max(seen, ev.n)
				if ev.n >= want {
					t1 = ev.t
				}
			case <-deadline.C:
				out.timeouts++
				seen = want // a late EXISTS for it must not count for the next one
			}
		}
		deadline.Stop()
		if !t1.IsZero() {
			l := t1.Sub(t0)
			if l < 0 {
				out.early++
			}
			out.lat = append(out.lat, l)
		}
		time.Sleep(gap)
	}
	_, _ = c.bw.WriteString("DONE\r\n")
	_ = c.bw.Flush()
	return out
}
