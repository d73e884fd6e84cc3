package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Size
		wantErr string // substring of the error; "" for success
	}{
		{in: "0", want: 0},
		{in: "1000", want: 1000},
		{in: "1000B", want: 1000},
		{in: "1000 b", want: 1000},
		{in: "100kB", want: 100_000},
		{in: "100KB", want: 100_000},
		{in: "10MB", want: 10_000_000},
		{in: "2GB", want: 2_000_000_000},
		{in: "512KiB", want: 512 << 10},
		{in: "512kib", want: 512 << 10},
		{in: "50MiB", want: 50 << 20},
		{in: "50 MiB", want: 50 << 20},
		{in: "  50MIB  ", want: 50 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "", wantErr: "whole number"},
		{in: "MiB", wantErr: "whole number"},
		{in: "+5", wantErr: "whole number"},
		{in: "-5", wantErr: "negative"},
		{in: "-5MiB", wantErr: "negative"},
		{in: "1.5MiB", wantErr: "fractions"},
		{in: "1,5MiB", wantErr: "fractions"},
		{in: "5XB", wantErr: `unknown unit "XB"`},
		{in: "5 M iB", wantErr: "unknown unit"},
		{in: "5TiB", wantErr: "unknown unit"},
		{in: "1e6", wantErr: "unknown unit"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "8589934592GiB", wantErr: "too large"},
		{in: "99999999999999999999999MB", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSize(tt.in)
			checkErr(t, err, tt.wantErr)
			if err == nil && got != tt.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestSizeUnmarshalTOML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      any
		want    Size
		wantErr string
	}{
		{name: "integer", in: int64(1234), want: 1234},
		{name: "zero", in: int64(0), want: 0},
		{name: "string", in: "4KiB", want: 4096},
		{name: "negative integer", in: int64(-1), wantErr: "negative"},
		{name: "bad string", in: "lots", wantErr: "whole number"},
		{name: "float", in: 1.5, wantErr: "not a float"},
		{name: "bool", in: true, wantErr: "want an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s Size
			err := s.UnmarshalTOML(tt.in)
			checkErr(t, err, tt.wantErr)
			if err == nil && s != tt.want {
				t.Errorf("UnmarshalTOML(%v) = %d, want %d", tt.in, s, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1000"},
		{1023, "1023"},
		{1024, "1KiB"},
		{1536 << 10, "1536KiB"},
		{50 << 20, "50MiB"},
		{1 << 30, "1GiB"},
		{3 << 30, "3GiB"},
		{10_000_000, "10000000"},
		{1<<63 - 1, "9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.in.String(); got != tt.want {
				t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
			}
			back, err := ParseSize(tt.want)
			if err != nil || back != tt.in {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.want, back, err, tt.in)
			}
		})
	}
}

func TestDurationUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "30s", want: 30 * time.Second},
		{in: "5m", want: 5 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "-5s", wantErr: "negative"},
		{in: "300", wantErr: "missing unit"},
		{in: "", wantErr: "invalid duration"},
		{in: "5 minutes", wantErr: `unknown unit " minutes"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var d Duration
			err := d.UnmarshalText([]byte(tt.in))
			checkErr(t, err, tt.wantErr)
			if err == nil && d.D() != tt.want {
				t.Errorf("UnmarshalText(%q) = %v, want %v", tt.in, d.D(), tt.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Second, "30s"},
		{5 * time.Minute, "5m"},
		{10 * time.Minute, "10m"},
		{90 * time.Minute, "1h30m"},
		{2 * time.Hour, "2h"},
		{time.Hour + 30*time.Second, "1h0m30s"},
		{250 * time.Millisecond, "250ms"},
		{90 * time.Second, "1m30s"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			d := Duration(tt.in)
			if got := d.String(); got != tt.want {
				t.Errorf("Duration(%v).String() = %q, want %q", tt.in, got, tt.want)
			}
			text, err := d.MarshalText()
			if err != nil || string(text) != tt.want {
				t.Errorf("MarshalText() = %q, %v; want %q", text, err, tt.want)
			}
			var back Duration
			if err := back.UnmarshalText(text); err != nil || back != d {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", text, back, err, d)
			}
		})
	}
}

// checkErr fails t unless err contains want, or is nil when want is "".
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
