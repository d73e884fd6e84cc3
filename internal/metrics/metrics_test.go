package metrics

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("posthorn_x_total", "Things.")
	c.Add(3)
	r.Func("posthorn_y", "Labelled.", "gauge", func() []Sample {
		return []Sample{{Labels: Label("svc", `a"b`), Value: 2}}
	})
	var b strings.Builder
	r.WriteTo(&b)
	want := "# HELP posthorn_x_total Things.\n# TYPE posthorn_x_total counter\nposthorn_x_total 3\n" +
		"# HELP posthorn_y Labelled.\n# TYPE posthorn_y gauge\nposthorn_y{svc=\"a\\\"b\"} 2\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestHandler(t *testing.T) {
	r := NewRegistry()
	healthy := error(nil)
	h := r.Handler(func(context.Context) error { return healthy })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Errorf("healthz = %d %q", rec.Code, rec.Body)
	}
	healthy = errors.New("store down")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 503 {
		t.Errorf("unhealthy healthz = %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", nil))
	if rec.Code != 405 {
		t.Errorf("POST /metrics = %d", rec.Code)
	}
}
