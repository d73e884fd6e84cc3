package local

import (
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
