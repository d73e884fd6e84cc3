package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// percentile returns the p-th percentile (0–100) of sorted samples, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	k = max(0, min(k, len(sorted)-1))
	return sorted[k]
}

// summary is the distribution of one kind of sample.
type summary struct {
	N        int     `json:"n"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	MeanMs   float64 `json:"mean_ms"`
	MinMs    float64 `json:"min_ms"`
	Failures int     `json:"failures"`
	Cut      int     `json:"cut,omitempty"` // cut unfinished: their time so far is in the figures
}

func summarize(s []time.Duration) summary {
	slices.Sort(s)
	out := summary{N: len(s)}
	if len(s) == 0 {
		return out
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	out.P50ms = ms(percentile(s, 50))
	out.P99ms = ms(percentile(s, 99))
	out.MaxMs = ms(s[len(s)-1])
	out.MinMs = ms(s[0])
	out.MeanMs = ms(sum / time.Duration(len(s)))
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMs renders milliseconds with about three significant digits.
func fmtMs(v float64) string {
	switch a := max(v, -v); {
	case a == 0:
		return "0"
	case a < 1:
		return fmt.Sprintf("%.2f", v)
	case a < 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtKiB(k int64) string {
	switch {
	case k >= 10<<20:
		return fmt.Sprintf("%.1f GiB", float64(k)/(1<<20))
	case k >= 10<<10:
		return fmt.Sprintf("%.0f MiB", float64(k)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(k)/(1<<10))
	}
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
}

// saveResult writes v as DIR/KIND-NAME.json.
func saveResult(dir, kind, name string, v any) error {
	if dir == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, kind+"-"+name+".json"), b, 0o644)
}

// loadResults reads DIR/KIND-*.json in the order of names, then any others.
func loadResults[T any](dir, kind string, order []string) []T {
	files, _ := filepath.Glob(filepath.Join(dir, kind+"-*.json"))
	rank := func(f string) int {
		n := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), kind+"-"), ".json")
		for i, o := range order {
			if n == o || strings.HasPrefix(n, o+"-") {
				return i
			}
		}
		return len(order)
	}
	slices.SortStableFunc(files, func(a, b string) int { return rank(a) - rank(b) })
	var out []T
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var v T
		if json.Unmarshal(b, &v) == nil {
			out = append(out, v)
		}
	}
	return out
}
