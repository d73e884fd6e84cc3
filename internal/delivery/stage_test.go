package delivery

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// TestStaged: small messages stay in memory, large ones spill to an
// already-unlinked file, and both read back the same through ReadAt.
func TestStaged(t *testing.T) {
	for _, size := range []int{0, 1, stageMemory, stageMemory + 1, 3*stageMemory + 17} {
		dir := t.TempDir()
		st := &staged{dir: dir}
		want := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		for rest := want; len(rest) > 0; {
			n := min(len(rest), 1000)
			if _, err := st.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if st.Size() != int64(size) {
			t.Fatalf("size %d: Size() = %d", size, st.Size())
		}
		if (st.f != nil) != (size > stageMemory) {
			t.Errorf("size %d: spilled to a file = %v", size, st.f != nil)
		}
		got, err := io.ReadAll(io.NewSectionReader(st, 0, st.Size()))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: read back %d bytes, err %v", size, len(got), err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("size %d: %d files left in the temporary directory", size, len(ents))
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
