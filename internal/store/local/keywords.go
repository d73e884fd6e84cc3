package local

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Keywords live in Maildir file names as letters a–z, mapped to names by a
// "dovecot-keywords" file in each Maildir ("0 $Forwarded" means 'a'), as
// Dovecot does, so both servers read each other's flags. Keywords beyond
// the 26 letters are kept in the index only.

const keywordsFile = "dovecot-keywords"

// keywordLocks serialises changes of one Maildir's keyword file.
type keywordLocks struct {
	mu sync.Mutex
}

// readKeywords returns the keyword names of dir, index = letter - 'a'.
func readKeywords(dir string) []string {
	f, err := os.Open(filepath.Join(dir, keywordsFile))
	if err != nil {
		return nil
	}
	defer f.Close()
	names := make([]string, 26)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n, name, ok := strings.Cut(sc.Text(), " ")
		i, err := strconv.Atoi(n)
		if ok && err == nil && i >= 0 && i < 26 && validKeyword(name) {
			names[i] = name
		}
	}
	return names
}

// validKeyword: an IMAP atom without backslash (RFC 9051 §9 flag-keyword).
func validKeyword(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// infoFor returns the ":2,…" suffix for flags in dir, adding keywords to
// the dir's keyword file as needed.
func (s *Store) infoFor(dir string, flags []string) (string, error) {
	info := infoSuffix(flags)
	var kws []string
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) {
			kws = append(kws, f)
		}
	}
	if len(kws) == 0 {
		return info, nil
	}
	letters, err := s.keywordLetters(dir, kws)
	if err != nil {
		return "", err
	}
	return info + letters, nil
}

// keywordLetters maps keywords to letters, assigning free letters to new
// keywords and saving the file (tmp, fsync, rename).
func (s *Store) keywordLetters(dir string, kws []string) (string, error) {
	s.kwLock.mu.Lock()
	defer s.kwLock.mu.Unlock()
	names := readKeywords(dir)
	if names == nil {
		names = make([]string, 26)
	}
	var letters []byte
	dirty := false
	for _, k := range kws {
		i := indexFold(names, k)
		if i < 0 {
			if i = indexFold(names, ""); i < 0 {
				continue // all 26 letters used: index only
			}
			names[i], dirty = k, true
		}
		letters = append(letters, byte('a'+i))
	}
	if dirty {
		if err := writeKeywords(dir, names); err != nil {
			return "", err
		}
	}
	return sortLetters(letters), nil
}

func indexFold(names []string, k string) int {
	for i, n := range names {
		if strings.EqualFold(n, k) {
			return i
		}
	}
	return -1
}

func sortLetters(b []byte) string {
	var out []byte
	for c := byte('a'); c <= 'z'; c++ {
		for _, x := range b {
			if x == c {
				out = append(out, c)
				break
			}
		}
	}
	return string(out)
}

func writeKeywords(dir string, names []string) error {
	var b strings.Builder
	for i, n := range names {
		if n != "" {
			fmt.Fprintf(&b, "%d %s\n", i, n)
		}
	}
	tmp := filepath.Join(dir, "tmp", keywordsFile+".new")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, keywordsFile))
}

// fileFlags returns the flags a file name carries: system flags and the
// keywords of its letters.
func fileFlags(names []string, file string) []string {
	flags := parseInfo(file)
	i := strings.LastIndex(file, ":2,")
	if i < 0 || names == nil {
		return flags
	}
	for _, c := range file[i+3:] {
		if c >= 'a' && c <= 'z' && names[c-'a'] != "" {
			flags = append(flags, names[c-'a'])
		}
	}
	return flags
}
