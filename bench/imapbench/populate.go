package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// populate delivers -n messages over SMTP, each to all -user-n accounts
// in one transaction (so every account gets the same mailbox).
func populate(args []string) error {
	fs := flag.NewFlagSet("populate", flag.ExitOnError)
	addr := fs.String("smtp", "", "SMTP address host:port")
	userFmt := fs.String("user-fmt", "bench%d@example.test", "recipient format, %d from 1 to -user-n")
	userN := fs.Int("user-n", 5, "recipients per message")
	n := fs.Int("n", 2000, "messages")
	conns := fs.Int("conns", 4, "parallel SMTP connections")
	seed := fs.Uint64("seed", 1, "random seed of the messages")
	small := fs.Bool("small", false, "only small text messages (for mailboxes that just need content)")
	_ = fs.Parse(args)
	var rcpts []string
	for i := 1; i <= *userN; i++ {
		rcpts = append(rcpts, fmt.Sprintf(*userFmt, i))
	}
	to := rcpts[0]
	if len(rcpts) > 1 {
		to = "bench-list@example.test"
	}
	start := time.Now()
	var next, bytes atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *conns)
	base := time.Now().Add(-2 * 365 * 24 * time.Hour)
	step := 2 * 365 * 24 * time.Hour / time.Duration(max(*n, 1))
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialSMTP(*addr, false, 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for {
				i := int(next.Add(1))
				if i > *n {
					return
				}
				r := rand.New(rand.NewPCG(*seed, uint64(i)))
				date := base.Add(time.Duration(i) * step)
				var msg []byte
				if *small {
					msg = smallMessage(r, i, to, date)
				} else {
					msg = makeMessage(r, i, to, date)
				}
				bytes.Add(int64(len(msg)))
				if _, err := c.send("sender@example.net", rcpts, msg, 2*time.Minute); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	el := time.Since(start)
	fmt.Printf("populate: %d messages × %d recipients, %.1f MB per mailbox, in %.1fs (%.0f deliveries/s)\n",
		*n, len(rcpts), float64(bytes.Load())/1e6, el.Seconds(), float64(*n*len(rcpts))/el.Seconds())
	return nil
}

// smallMessage is a short text message (latency samples, idle mailboxes).
func smallMessage(r *rand.Rand, i int, to string, date time.Time) []byte {
	var b strings.Builder
	fn, ln := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	fmt.Fprintf(&b, "From: %s %s <%s@example.net>\nTo: %s\nSubject: %s %s %s\nDate: %s\nMessage-ID: <s%d.%d@bench.example.net>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n",
		fn, ln, strings.ToLower(fn), to, subjectWord(r), subjectWord(r), subjectWord(r), date.Format(time.RFC1123Z), i, r.Uint32())
	b.WriteString(textOfSize(r, 1500+r.IntN(2000)))
	return []byte(b.String())
}
