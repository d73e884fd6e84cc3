package daemon

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"posthorn/internal/metrics"
	"posthorn/internal/store"
)

// buildHTTP makes the http listener's server: /metrics and /healthz.
func (d *Daemon) buildHTTP() {
	if len(d.cfg.Listen.Addrs("http")) == 0 {
		return
	}
	d.registerMetrics()
	d.http = &http.Server{
		Handler: metrics.Default.Handler(d.health),
		// Short: the listener has maxHTTPConns slots, and a client that
		// holds them (slow headers, idle keep-alive) keeps health checks
		// out for as long as it does. A scraper reconnects at no cost.
		ReadHeaderTimeout: 3 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// health checks that the store answers.
func (d *Daemon) health(ctx context.Context) error {
	_, err := d.store.Domains(ctx)
	return err
}

var started = time.Now()

// registerMetrics adds the series the daemon owns: panics per service,
// the queue by recipient state, and the start time.
func (d *Daemon) registerMetrics() {
	r := metrics.Default
	r.Func("posthorn_panics_total", "Recovered panics in sessions and background work (pickup, fetch, store), by service; anything but 0 is a bug.", "counter", func() []metrics.Sample {
		var out []metrics.Sample
		for svc, s := range d.servers {
			out = append(out, metrics.Sample{Labels: metrics.Label("service", svc), Value: float64(s.Panics())})
		}
		for svc, s := range d.imap {
			out = append(out, metrics.Sample{Labels: metrics.Label("service", svc), Value: float64(s.Panics())})
		}
		for svc, s := range d.pop3 {
			out = append(out, metrics.Sample{Labels: metrics.Label("service", svc), Value: float64(s.Panics())})
		}
		if d.sieve != nil {
			out = append(out, metrics.Sample{Labels: metrics.Label("service", "managesieve"), Value: float64(d.sieve.Panics())})
		}
		if d.pickup != nil {
			out = append(out, metrics.Sample{Labels: metrics.Label("service", "pickup"), Value: float64(d.pickup.Panics())})
		}
		out = append(out, metrics.Sample{Labels: metrics.Label("service", "store"), Value: float64(d.storePanics())})
		if d.queue != nil {
			out = append(out, metrics.Sample{Labels: metrics.Label("service", "queue"), Value: float64(d.queue.Panics())})
		}
		if len(d.cfg.Fetch) > 0 {
			out = append(out, metrics.Sample{Labels: metrics.Label("service", "fetch"), Value: float64(d.fetchers.panics())})
		}
		return out
	})
	r.Func("posthorn_queue_recipients", "Recipients in the outbound queue, by state.", "gauge", func() []metrics.Sample {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := d.store.QueueCounts(ctx)
		if err != nil {
			return nil
		}
		var out []metrics.Sample
		for _, st := range []store.RcptState{store.RcptQueued, store.RcptHeld} {
			out = append(out, metrics.Sample{Labels: metrics.Label("state", string(st)), Value: float64(n[st])})
		}
		return out
	})
	r.Func("posthorn_start_time_seconds", "When this process started, in Unix time.", "gauge", func() []metrics.Sample {
		return []metrics.Sample{{Value: float64(started.Unix())}}
	})
}

// maxHTTPConns bounds the http listener's connections: it had no limit,
// and 22,000 idle keep-alive connections used up the daemon's file
// descriptors, which every other listener needs.
const maxHTTPConns = 64

// capListener closes connections beyond its slots at once (a scraper
// retries), rather than let them queue.
type capListener struct {
	net.Listener
	slots chan struct{}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: nc, release: func() { <-l.slots }}, nil
		default:
			_ = nc.Close()
		}
	}
}

// slotConn gives its slot back once, when closed.
type slotConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *slotConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
