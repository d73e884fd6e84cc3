package local

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// standInKeyFile holds the key of the SCRAM salts made up for names that
// are no account (sasl.NewSCRAMSHA256): it must outlive restarts, or a
// made-up salt would change where a real one does not.
const standInKeyFile = "standin.key"

// StandInKey returns the data directory's stand-in key, making it on first
// use: 32 random octets, readable by the owner only, written to a
// temporary name, synced and linked into place, so that two processes
// starting at once agree on one key and a crash leaves either no key or a
// whole one.
func (s *Store) StandInKey() ([]byte, error) {
	path := filepath.Join(s.dir, standInKeyFile)
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil && len(b) == 32 {
			return b, nil
		}
		if err == nil {
			return nil, fmt.Errorf("local: %s: %d octets, want 32; remove it to make a new one", path, len(b))
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err := makeKey(s.dir, path); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("local: %s vanished while being made", path)
}

// makeKey writes a new key to path unless one is there already.
func makeKey(dir, path string) error {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand, Go 1.24)
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := writeFileSynced(tmp, k); err != nil {
		return err
	}
	defer os.Remove(tmp)
	// Link, not rename: a key another process put there first stays.
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(dir)
}
