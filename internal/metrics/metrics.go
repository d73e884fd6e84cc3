// Package metrics keeps Posthorn's counters and serves them, with a health
// check, on the http listener: Prometheus text exposition format 0.0.4 at
// /metrics, "ok" at /healthz. It has no dependencies: counters are atomic
// integers, and values owned elsewhere (queue length, panics) are read by
// functions at scrape time.
package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Int64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n int64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() int64 { return c.v.Load() }

// Registry holds named series.
type Registry struct {
	mu     sync.Mutex
	series map[string]*series
}

type series struct {
	name, help, kind string
	values           func() []Sample
}

// Sample is one value of a series, with its labels ("k=\"v\"" pairs,
// already formatted, or "").
type Sample struct {
	Labels string
	Value  float64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{series: map[string]*series{}} }

// Counter registers and returns a counter.
func (r *Registry) Counter(name, help string) *Counter {
	c := &Counter{}
	r.Func(name, help, "counter", func() []Sample { return []Sample{{Value: float64(c.Value())}} })
	return c
}

// Func registers a series computed at scrape time; kind is "counter" or
// "gauge".
func (r *Registry) Func(name, help, kind string, f func() []Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.series[name] = &series{name: name, help: help, kind: kind, values: f}
}

// Label formats one label pair, escaped per the exposition format.
func Label(k, v string) string {
	v = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(v)
	return k + `="` + v + `"`
}

// WriteTo writes every series in the text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	names := make([]string, 0, len(r.series))
	for n := range r.series {
		names = append(names, n)
	}
	all := r.series
	r.mu.Unlock()
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		s := all[n]
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", s.name, s.help, s.name, s.kind)
		for _, v := range s.values() {
			if v.Labels != "" {
				fmt.Fprintf(&b, "%s{%s} %v\n", s.name, v.Labels, v.Value)
			} else {
				fmt.Fprintf(&b, "%s %v\n", s.name, v.Value)
			}
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Handler serves /metrics and /healthz. health is called for /healthz
// with a short deadline; nil error means healthy.
func (r *Registry) Handler(health func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.WriteTo(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
		defer cancel()
		if err := health(ctx); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}

// Default is the process's registry, where packages register counters
// at init.
var Default = NewRegistry()
