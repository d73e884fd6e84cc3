package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCopyDotStuffed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		lines int64
		want  string
	}{
		{"", -1, ".\r\n"},
		{"a\r\nb\r\n", -1, "a\r\nb\r\n.\r\n"},
		{"no line end", -1, "no line end\r\n.\r\n"},
		{".\r\n", -1, "..\r\n.\r\n"},
		{".", -1, "..\r\n.\r\n"},
		{"a\r\n.b\r\n..c\r\n.", -1, "a\r\n..b\r\n...c\r\n..\r\n.\r\n"},
		{"bare\nlf\n.x\n", -1, "bare\r\nlf\r\n..x\r\n.\r\n"},
		{"a\rb\r\n", -1, "a\rb\r\n.\r\n"},               // a bare CR is data
		{"\r.\r\n", -1, "\r.\r\n.\r\n"},                 // not at the start of a line
		{"ends with CR\r", -1, "ends with CR\r\n.\r\n"}, // taken as the line end
		{"a\r\r\n", -1, "a\r\r\n.\r\n"},
		{"\r\n\r\n", -1, "\r\n\r\n.\r\n"},
		// TOP: header, blank line, n body lines.
		{"H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\nb3\r\n", 0, "H: 1\r\nH: 2\r\n\r\n.\r\n"},
		{"H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\nb3\r\n", 2, "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\n.\r\n"},
		{"H: 1\r\n\r\nb1\r\n.b2\r\nb3", 5, "H: 1\r\n\r\nb1\r\n..b2\r\nb3\r\n.\r\n"},
		{"H: 1\n\nb1\nb2\n", 1, "H: 1\r\n\r\nb1\r\n.\r\n"},
		{"H: only a header\r\n", 0, "H: only a header\r\n.\r\n"},
		{"H: x\r\n\r\n\r\n\r\nb\r\n", 2, "H: x\r\n\r\n\r\n\r\n.\r\n"}, // blank body lines count
		{"H: x\r\n\r\nb1\r", 1, "H: x\r\n\r\nb1\r\n.\r\n"},
	} {
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"whole":    func(r io.Reader) io.Reader { return r },
			"one byte": iotest.OneByteReader,
			"half":     iotest.HalfReader,
		} {
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			if err := copyDotStuffed(w, wrap(strings.NewReader(tc.in)), tc.lines); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			if out.String() != tc.want {
				t.Errorf("%s %q TOP %d:\n got %q\nwant %q", name, tc.in, tc.lines, out.String(), tc.want)
			}
		}
	}
}

// TestCopyDotStuffedStreams: a 32 MiB line is never held whole. Not
// parallel, so the allocation count is this test's own.
func TestCopyDotStuffedStreams(t *testing.T) {
	const size = 32 << 20
	in := io.MultiReader(strings.NewReader("."), io.LimitReader(zeros{}, size))
	n := &countWriter{}
	w := bufio.NewWriter(n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := copyDotStuffed(w, in, -1); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	w.Flush()
	if want := int64(size + 2 + 2 + 3); n.n != want {
		t.Errorf("wrote %d, want %d", n.n, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("allocated %d bytes for a %d-byte message", alloc, size)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestCopyDotStuffedErrors: a failing store or client ends the copy.
func TestCopyDotStuffedErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	w := bufio.NewWriter(io.Discard)
	if err := copyDotStuffed(w, iotest.ErrReader(boom), -1); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	w = bufio.NewWriterSize(failWriter{boom}, 16)
	if err := copyDotStuffed(w, io.LimitReader(zeros{}, 1<<30), -1); !errors.Is(err, boom) {
		t.Errorf("write error: %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// FuzzCopyDotStuffed checks the invariants of any content: CRLF lines,
// no lone ".", and un-stuffing gives back the content with LF line ends.
func FuzzCopyDotStuffed(f *testing.F) {
	for _, s := range []string{"a\r\n.b\r\n", ".", "\r", "x\r\r\n\n.\n", "H: v\r\n\r\n.\r\n..\r\nend"} {
		f.Add([]byte(s), int64(-1))
		f.Add([]byte(s), int64(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, lines int64) {
		if lines < -1 {
			lines = -1
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := copyDotStuffed(w, bytes.NewReader(in), lines); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		body, ok := bytes.CutSuffix(out.Bytes(), []byte(".\r\n"))
		if !ok || len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
			t.Fatalf("bad end: %q", out.Bytes())
		}
		var got []byte
		for _, l := range bytes.SplitAfter(body, []byte("\r\n")) {
			if len(l) == 0 {
				continue
			}
			if bytes.Equal(l, []byte(".\r\n")) || bytes.IndexByte(l, '\n') != len(l)-1 {
				t.Fatalf("bad line %q in %q", l, out.Bytes())
			}
			l = bytes.TrimSuffix(l, []byte("\r\n"))
			if len(l) > 0 && l[0] == '.' {
				if len(l) < 2 || l[1] != '.' {
					t.Fatalf("unstuffed dot line %q", l)
				}
				l = l[1:]
			}
			got = append(append(got, l...), '\n')
		}
		if lines < 0 {
			want := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
			if len(want) > 0 && want[len(want)-1] == '\r' {
				want[len(want)-1] = '\n'
			} else if len(want) > 0 && want[len(want)-1] != '\n' {
				want = append(want, '\n')
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("content changed:\n in %q\ngot %q", in, got)
			}
		}
	})
}
