package local

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// toCRLF is the plain definition crlfReader must agree with.
func toCRLF(in []byte) []byte {
	var out []byte
	var prev byte
	for _, b := range in {
		if b == '\n' && prev != '\r' {
			out = append(out, '\r')
		}
		out = append(out, b)
		prev = b
	}
	return out
}

// odd reads with a fresh random buffer size each time.
type odd struct {
	r   io.Reader
	rng *rand.Rand
}

func (o odd) Read(p []byte) (int, error) { return o.r.Read(p[:1+o.rng.IntN(len(p))]) }

func TestCRLFReader(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][]byte{nil, []byte("\n"), []byte("\r\n"), []byte("\r"), []byte("a\nb\r\nc\rd\n\n\r\r\n"), bytes.Repeat([]byte("x"), 70<<10)}
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.IntN(100<<10))
		for j := range b {
			b[j] = "ab\r\n"[rng.IntN(4)]
		}
		cases = append(cases, b)
	}
	for i, in := range cases {
		path := filepath.Join(dir, "m")
		if err := os.WriteFile(path, in, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r := newCRLFReader(f)
		got, err := io.ReadAll(odd{r, rng})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if want := toCRLF(in); !bytes.Equal(got, want) {
			t.Fatalf("case %d (%d bytes): got %d bytes, want %d", i, len(in), len(got), len(want))
		}
	}
}

// lfRoundTrip writes in through an lfWriter, chunk octets per Write, and
// reads the file back through a crlfReader with the smallest buffer bufio
// allows, so that both sides meet buffer boundaries everywhere.
func lfRoundTrip(t testing.TB, in []byte, chunk int) (file, back []byte, vsize int64) {
	t.Helper()
	var b bytes.Buffer
	w := &lfWriter{w: bufioWriter(&b)}
	for p := in; len(p) > 0; {
		n := min(chunk, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if w.n != int64(b.Len()) {
		t.Fatalf("lfWriter counted %d octets, wrote %d", w.n, b.Len())
	}
	file = b.Bytes()
	r := &crlfReader{r: bufio.NewReaderSize(bytes.NewReader(file), 16)}
	back, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return file, back, w.n + w.bare
}

// TestLFRoundTrip: what APPEND stores reads back octet for octet, bare
// LF aside (it reads as CRLF), and the size counted while writing is the
// size read. "\r\r\n" used to be stored as "\r\n" and read back one CR
// short, with the size counting the lost CR.
func TestLFRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, file string }{
		{"Subject: crcr\r\n\r\nline1\r\r\nline2\r\n", "Subject: crcr\n\nline1\r\r\nline2\n"},
		{"", ""},
		{"\r\n", "\n"},
		{"\r\r\n", "\r\r\n"},
		{"\r\r\r\n", "\r\r\r\n"},
		{"\r\r\r\r\n\r\n", "\r\r\r\r\n\n"},
		{"a\r\r\n\r\n", "a\r\r\n\n"},
		{"\r\r\n\r\r\n", "\r\r\n\r\r\n"},
		{"\r\n\r\n\r\r", "\n\n\r\r"},
		{"a\r", "a\r"},
		{"\r", "\r"},
		{"a\rb\r\n", "a\rb\n"},
		{"\n", "\n"},             // bare LF: reads as CRLF
		{"a\nb\r\n", "a\nb\n"},   // bare LF: reads as CRLF
		{"\r\r\n\n", "\r\r\n\n"}, // bare LF after a stored CRLF
	} {
		want := toCRLF([]byte(tc.in))
		for chunk := 1; chunk <= len(tc.in)+1; chunk++ {
			file, back, vsize := lfRoundTrip(t, []byte(tc.in), chunk)
			if string(file) != tc.file {
				t.Errorf("%q in chunks of %d stored as %q, want %q", tc.in, chunk, file, tc.file)
			}
			if !bytes.Equal(back, want) {
				t.Errorf("%q in chunks of %d reads back as %q, want %q", tc.in, chunk, back, want)
			}
			if vsize != int64(len(back)) {
				t.Errorf("%q in chunks of %d: size %d, read %d octets", tc.in, chunk, vsize, len(back))
			}
		}
	}
}

// FuzzLFRoundTrip: for any message and any split into writes, reading the
// stored file gives the message with each bare LF as CRLF (so exactly the
// message when it has no bare LF), the size counted while writing is what
// is read, and so is the size a sync counts from the file (countVsize).
func FuzzLFRoundTrip(f *testing.F) {
	f.Add([]byte("Subject: crcr\r\n\r\nline1\r\r\nline2\r\n"), uint8(1))
	f.Add([]byte("\r\r\r\n\r"), uint8(3))
	f.Add([]byte("a\nb\r\r\n\n\r"), uint8(2))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		file, back, vsize := lfRoundTrip(t, in, 1+int(chunk))
		want := toCRLF(in)
		if !bytes.Equal(back, want) {
			t.Fatalf("%q stored as %q reads back as %q, want %q", in, file, back, want)
		}
		if bareLF := bytes.Count(in, lf) - bytes.Count(in, []byte("\r\n")); bareLF == 0 && !bytes.Equal(back, in) {
			t.Fatalf("%q without bare LF reads back as %q", in, back)
		}
		if vsize != int64(len(back)) {
			t.Fatalf("%q: size %d, read %d octets", in, vsize, len(back))
		}
		whole, _, _ := lfRoundTrip(t, in, len(in)+1)
		if !bytes.Equal(file, whole) {
			t.Fatalf("%q: stored as %q in chunks of %d, as %q in one", in, file, 1+int(chunk), whole)
		}
		path := filepath.Join(dir, "m")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		if n, err := countVsize(path); err != nil || n != vsize {
			t.Fatalf("%q: countVsize %d, %v; want %d", in, n, err, vsize)
		}
	})
}
