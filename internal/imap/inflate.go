package imap

import (
	"bufio"
	"errors"
	"io"
)

// inflater decodes a raw DEFLATE stream (RFC 1951) and hands out every
// octet as soon as it is decoded. Go's compress/flate keeps decoded data
// until a stored block, the end of the stream or a full window; clients
// such as mbsync end each burst with Z_PARTIAL_FLUSH (an empty fixed-code
// block), after which that decoder waits for input the client will not
// send before it has an answer. Client-to-server traffic is small
// (commands, the odd APPEND), so this decoder is written for clarity:
// canonical Huffman codes decoded a bit at a time.
type inflater struct {
	r *bufio.Reader

	bitbuf uint32 // unread input bits, least significant first
	bitcnt uint

	window [1 << 15]byte // the last 32 KiB of output, for back-references
	wpos   int           // next write position in window (mod 32 KiB)
	filled bool          // window has wrapped: every position holds data

	out []byte // decoded, not yet read: a slice of window

	state     inflateState
	final     bool
	stored    int // octets of a stored block still to copy
	lit, dist huffman
	copyLen   int // octets of a back-reference still to copy
	copyDist  int
	err       error
}

type inflateState int

const (
	blockHeader inflateState = iota
	inStored
	inHuffman
	inCopy
	streamEnd
)

var errCorrupt = errors.New("inflate: corrupt DEFLATE stream")

func newInflater(r *bufio.Reader) *inflater { return &inflater{r: r} }

// Read returns decoded octets; it reads input only when it has none.
func (f *inflater) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		f.err = f.step()
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// step decodes one unit (a block header, a symbol, part of a stored block
// or of a back-reference) after another. It stops, returning nil, once it
// has output and either the window wrapped (the output must be read
// before the window is written again) or no input is buffered: what was
// decoded goes out before anything may block.
func (f *inflater) step() error {
	for {
		if len(f.out) > 0 && (f.wpos == 0 || f.r.Buffered() == 0) {
			return nil
		}
		var err error
		switch f.state {
		case blockHeader:
			err = f.header()
		case inStored:
			err = f.copyStored()
		case inHuffman:
			err = f.symbol()
		case inCopy:
			f.copyBack()
		case streamEnd:
			return io.EOF
		}
		if err != nil {
			return err
		}
	}
}

func (f *inflater) need(n uint) error {
	for f.bitcnt < n {
		b, err := f.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		f.bitbuf |= uint32(b) << f.bitcnt
		f.bitcnt += 8
	}
	return nil
}

func (f *inflater) bits(n uint) (int, error) {
	if err := f.need(n); err != nil {
		return 0, err
	}
	v := int(f.bitbuf & (1<<n - 1))
	f.bitbuf >>= n
	f.bitcnt -= n
	return v, nil
}

// header reads a block header (RFC 1951 §3.2.3).
func (f *inflater) header() error {
	if f.final {
		f.state = streamEnd
		return nil
	}
	h, err := f.bits(3)
	if err != nil {
		return err
	}
	f.final = h&1 == 1
	switch h >> 1 {
	case 0: // stored (§3.2.4): to a byte boundary, then LEN and NLEN
		f.bitbuf, f.bitcnt = f.bitbuf>>(f.bitcnt%8), f.bitcnt-f.bitcnt%8
		v, err := f.bits(16)
		if err != nil {
			return err
		}
		nv, err := f.bits(16)
		if err != nil {
			return err
		}
		if v != ^nv&0xffff {
			return errCorrupt
		}
		f.stored, f.state = v, inStored
	case 1: // fixed codes (§3.2.6)
		f.lit, f.dist = fixedLit, fixedDist
		f.state = inHuffman
	case 2:
		if err := f.dynamic(); err != nil {
			return err
		}
		f.state = inHuffman
	default:
		return errCorrupt
	}
	return nil
}

// copyStored copies part of a stored block: an octet left in the bit
// buffer, or a run of what the reader holds, up to the window's end.
func (f *inflater) copyStored() error {
	switch {
	case f.stored == 0:
		f.state = blockHeader
		return nil
	case f.bitcnt >= 8:
		f.emit(byte(f.bitbuf))
		f.bitbuf >>= 8
		f.bitcnt -= 8
		f.stored--
		return nil
	}
	if _, err := f.r.Peek(1); err != nil { // wait for input (nothing is pending)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	n := min(f.r.Buffered(), f.stored, len(f.window)-f.wpos)
	start := f.wpos
	if _, err := io.ReadFull(f.r, f.window[start:start+n]); err != nil {
		return err
	}
	f.advance(n)
	f.stored -= n
	return nil
}

// emit appends one octet to the output.
func (f *inflater) emit(b byte) {
	f.window[f.wpos] = b
	f.advance(1)
}

// advance records the n octets just written at wpos as output. The
// output always ends at wpos; when the window wraps, step hands it out
// before anything is written at the start again.
func (f *inflater) advance(n int) {
	if len(f.out) == 0 {
		f.out = f.window[f.wpos : f.wpos+n]
	} else {
		f.out = f.out[:len(f.out)+n]
	}
	f.wpos += n
	if f.wpos == len(f.window) {
		f.wpos, f.filled = 0, true
	}
}

// symbol decodes one literal, end of block, or length and distance.
func (f *inflater) symbol() error {
	sym, err := f.decode(&f.lit)
	if err != nil {
		return err
	}
	switch {
	case sym < 256:
		f.emit(byte(sym))
		return nil
	case sym == 256:
		f.state = blockHeader
		return nil
	case sym > 285:
		return errCorrupt
	}
	n, err := f.extra(lengthBase[sym-257], lengthExtra[sym-257])
	if err != nil {
		return err
	}
	d, err := f.decode(&f.dist)
	if err != nil {
		return err
	}
	if d > 29 {
		return errCorrupt
	}
	dist, err := f.extra(distBase[d], distExtra[d])
	if err != nil {
		return err
	}
	if !f.filled && dist > f.wpos {
		return errCorrupt // refers to before the stream began
	}
	f.copyLen, f.copyDist, f.state = n, dist, inCopy
	return nil
}

func (f *inflater) extra(base, nbits int) (int, error) {
	v, err := f.bits(uint(nbits))
	return base + v, err
}

// copyBack copies a back-reference, stopping where the window wraps.
func (f *inflater) copyBack() {
	for f.copyLen > 0 {
		src := f.wpos - f.copyDist
		if src < 0 {
			src += len(f.window)
		}
		f.emit(f.window[src])
		f.copyLen--
		if f.wpos == 0 {
			break // wrapped: the output goes out first
		}
	}
	if f.copyLen == 0 {
		f.state = inHuffman
	}
}

// huffman is a canonical code (RFC 1951 §3.2.2): how many codes have
// each length, and the symbols in code order.
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) (huffman, bool) {
	var h huffman
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	left, codes, longest := 1, 0, 0
	for l := 1; l < 16; l++ { // over-subscribed: not a code
		left = left<<1 - h.count[l]
		if left < 0 {
			return h, false
		}
		if h.count[l] > 0 {
			codes += h.count[l]
			longest = l
		}
	}
	// Incomplete: only an empty code or a single 1-bit one is allowed
	// (as zlib and compress/flate allow).
	if left > 0 && codes > 0 && !(codes == 1 && longest == 1) {
		return h, false
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = make([]int, len(lengths))
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = s
			offs[l]++
		}
	}
	return h, true
}

// decode reads one symbol, a bit at a time (codes are sent most
// significant bit first, unlike the other fields).
func (f *inflater) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := f.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		if n := h.count[l]; code-n < first {
			return h.symbol[index+code-first], nil
		} else {
			index += n
			first = (first + n) << 1
			code <<= 1
		}
	}
	return 0, errCorrupt
}

var clOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamic reads the code tables of a dynamic block (§3.2.7).
func (f *inflater) dynamic() error {
	nlen, err := f.extra(257, 5)
	if err != nil {
		return err
	}
	ndist, err := f.extra(1, 5)
	if err != nil {
		return err
	}
	ncode, err := f.extra(4, 4)
	if err != nil {
		return err
	}
	if nlen > 286 || ndist > 30 {
		return errCorrupt
	}
	var cl [19]int
	for i := 0; i < ncode; i++ {
		if cl[clOrder[i]], err = f.bits(3); err != nil {
			return err
		}
	}
	lencode, ok := newHuffman(cl[:])
	if !ok {
		return errCorrupt
	}
	lengths := make([]int, nlen+ndist)
	for i := 0; i < len(lengths); {
		sym, err := f.decode(&lencode)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = sym
			i++
			continue
		}
		prev, rep := 0, 0
		switch sym {
		case 16:
			if i == 0 {
				return errCorrupt
			}
			prev = lengths[i-1]
			rep, err = f.extra(3, 2)
		case 17:
			rep, err = f.extra(3, 3)
		default:
			rep, err = f.extra(11, 7)
		}
		if err != nil {
			return err
		}
		if i+rep > len(lengths) {
			return errCorrupt
		}
		for ; rep > 0; rep-- {
			lengths[i] = prev
			i++
		}
	}
	if lengths[256] == 0 {
		return errCorrupt // no end-of-block code
	}
	if f.lit, ok = newHuffman(lengths[:nlen]); !ok {
		return errCorrupt
	}
	if f.dist, ok = newHuffman(lengths[nlen:]); !ok {
		return errCorrupt
	}
	return nil
}

// The tables of RFC 1951 §3.2.5.
var (
	lengthBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]int{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	fixedLit, fixedDist = fixedCodes()
)

// fixedCodes are the codes of §3.2.6.
func fixedCodes() (huffman, huffman) {
	l := make([]int, 288)
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	d := make([]int, 32) // 30 and 31 complete the code and are invalid (§3.2.6)
	for i := range d {
		d[i] = 5
	}
	lit, _ := newHuffman(l)
	dist, _ := newHuffman(d)
	return lit, dist
}
