package delivery

import (
	"errors"
	"io"
	"os"
	"sync"
)

// stageMemory is how much of a message is kept in memory while it is
// received; the rest goes to a temporary file. Most mail is smaller, and
// skipping the file saves its creation, writes, reads and removal on every
// message; a thousand sessions at once hold at most 256 MiB.
const stageMemory = 256 << 10

// staged holds a message being received: in memory while it is small, in
// an unsynced temporary file beyond stageMemory (it is never the only
// copy of acknowledged mail). Deliveries share it through ReadAt.
type staged struct {
	dir  string
	buf  []byte
	f    *os.File
	size int64
}

// stageBufs recycles the memory of staged messages (a 100 KiB message
// grown by append from nothing allocated about twice its size).
var stageBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (st *staged) Write(p []byte) (int, error) {
	if st.f == nil && len(st.buf)+len(p) <= stageMemory {
		if st.buf == nil {
			st.buf = (*stageBufs.Get().(*[]byte))[:0]
		}
		st.buf = append(st.buf, p...)
		st.size += int64(len(p))
		return len(p), nil
	}
	if st.f == nil {
		f, err := os.CreateTemp(st.dir, "in-*")
		if err != nil {
			return 0, err
		}
		// Unlinked at once: nothing is left behind whatever happens.
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return 0, err
		}
		st.f = f
		if _, err := f.Write(st.buf); err != nil {
			return 0, err
		}
		st.release()
	}
	n, err := st.f.Write(p)
	st.size += int64(n)
	return n, err
}

// ReadAt implements io.ReaderAt over what was written.
func (st *staged) ReadAt(p []byte, off int64) (int, error) {
	if st.f != nil {
		return st.f.ReadAt(p, off)
	}
	if off < 0 {
		return 0, errors.New("staged: negative offset")
	}
	if off >= int64(len(st.buf)) {
		return 0, io.EOF
	}
	n := copy(p, st.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Size is the number of octets written.
func (st *staged) Size() int64 { return st.size }

// release gives the memory back to the pool.
func (st *staged) release() {
	if st.buf != nil && cap(st.buf) <= stageMemory {
		b := st.buf[:0]
		stageBufs.Put(&b)
	}
	st.buf = nil
}

// Close releases the memory or the file.
func (st *staged) Close() error {
	st.release()
	if st.f != nil {
		return st.f.Close()
	}
	return nil
}
