package imap

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// TestInflateMatchesFlate: whatever compress/flate writes (every level,
// sync flushes between chunks, data larger than the window), the
// inflater gives back exactly the input, read in pieces of every size.
func TestInflateMatchesFlate(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 60 {
		size := rng.IntN(200 << 10)
		data := make([]byte, size)
		words := []string{"FETCH ", "1:* ", "(FLAGS) ", "\r\n", "BODY[] ", "hello ", "\x00\xff"}
		for i := 0; i < size; {
			if rng.IntN(4) == 0 {
				data[i] = byte(rng.Uint32())
				i++
				continue
			}
			i += copy(data[i:], words[rng.IntN(len(words))])
		}
		level := []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, 5, flate.BestCompression}[round%5]
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, level)
		for p := data; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(70000))
			w.Write(p[:n])
			if rng.IntN(2) == 0 {
				w.Flush()
			}
			p = p[n:]
		}
		w.Close()
		f := newInflater(bufio.NewReaderSize(bytes.NewReader(z.Bytes()), 16))
		var got bytes.Buffer
		buf := make([]byte, 1+rng.IntN(5000))
		for {
			n, err := f.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("round %d (level %d, %d octets): %v after %d octets", round, level, size, err, got.Len())
			}
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("round %d (level %d): %d octets out for %d in, differing", round, level, got.Len(), size)
		}
	}
}

// bitWriter writes DEFLATE bits, least significant first.
type bitWriter struct {
	out   []byte
	acc   uint32
	nbits uint
}

func (b *bitWriter) bits(v uint32, n uint) {
	b.acc |= v << b.nbits
	b.nbits += n
	for b.nbits >= 8 {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
		b.nbits -= 8
	}
}

// code writes a Huffman code, most significant bit first.
func (b *bitWriter) code(c uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		b.bits(c>>uint(i)&1, 1)
	}
}

func (b *bitWriter) fixedBlock(text string) {
	b.bits(0b010, 3) // not final, fixed codes
	for _, c := range []byte(text) {
		if c < 144 {
			b.code(0x30+uint32(c), 8)
		} else {
			b.code(0x190+uint32(c)-144, 9)
		}
	}
	b.code(0, 7) // end of block
}

// TestInflatePartialFlush: a burst ended the way zlib's Z_PARTIAL_FLUSH
// does (an empty fixed-code block, no byte alignment), as mbsync sends
// its commands, is handed out at once, while the rest of the stream has
// not been sent; compress/flate would wait for more input.
func TestInflatePartialFlush(t *testing.T) {
	t.Parallel()
	var b bitWriter
	b.fixedBlock("a1 NOOP\r\n")
	b.fixedBlock("") // the partial flush
	first := append([]byte(nil), b.out...)
	if b.nbits > 0 {
		first = append(first, byte(b.acc)) // the last, partly used octet
	}
	pr, pw := io.Pipe()
	go pw.Write(first)
	f := newInflater(bufio.NewReader(pr))
	got := make(chan string, 1)
	go func() {
		var s []byte
		buf := make([]byte, 64)
		for len(s) < len("a1 NOOP\r\n") {
			n, err := f.Read(buf)
			if err != nil {
				break
			}
			s = append(s, buf[:n]...)
		}
		got <- string(s)
	}()
	select {
	case s := <-got:
		if s != "a1 NOOP\r\n" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the burst was not handed out before more input came")
	}
	pw.Close()
}

func FuzzInflate(f *testing.F) {
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.BestCompression} {
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, level)
		w.Write([]byte("a1 LOGIN me pw\r\na2 SELECT INBOX\r\na2 SELECT INBOX\r\n"))
		w.Flush()
		w.Write(bytes.Repeat([]byte("abc"), 100))
		w.Close()
		f.Add(z.Bytes())
	}
	f.Add([]byte{0x02, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		want, werr := io.ReadAll(flate.NewReader(bytes.NewReader(in)))
		got, gerr := io.ReadAll(newInflater(bufio.NewReader(bytes.NewReader(in))))
		if werr == nil && (gerr != nil && gerr != io.EOF || !bytes.Equal(got, want)) {
			t.Fatalf("compress/flate decodes %d octets; we give %d octets, %v", len(want), len(got), gerr)
		}
		if werr != nil && gerr == nil {
			t.Fatalf("compress/flate fails (%v) after %d octets; we decode %d without error", werr, len(want), len(got))
		}
	})
}
