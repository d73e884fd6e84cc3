package unixmail

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// User is one account of the host (passwd(5)).
type User struct {
	Name     string
	UID, GID int
	Home     string
}

// passwd reads the account file again whenever it changes.
type passwd struct {
	path string

	mu    sync.Mutex
	mtime time.Time
	size  int64
	users map[string]User
}

// lookup returns the account named name (login names are case-sensitive,
// but mail local parts arrive lower-cased, so the lower-case name is
// tried too).
func (p *passwd) lookup(name string) (User, bool, error) {
	if err := p.refresh(); err != nil {
		return User{}, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[name]
	if !ok {
		u, ok = p.users[strings.ToLower(name)]
	}
	return u, ok, nil
}

func (p *passwd) refresh() error {
	fi, err := os.Stat(p.path)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.users != nil && fi.ModTime().Equal(p.mtime) && fi.Size() == p.size {
		return nil
	}
	users, err := readPasswd(p.path)
	if err != nil {
		return err
	}
	p.users, p.mtime, p.size = users, fi.ModTime(), fi.Size()
	return nil
}

func readPasswd(path string) (map[string]User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	users := map[string]User{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 7 {
			return nil, fmt.Errorf("%s:%d: want 7 fields, got %d", path, n, len(f))
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 || f[0] == "" || !strings.HasPrefix(f[5], "/") {
			return nil, fmt.Errorf("%s:%d: bad entry", path, n)
		}
		if _, dup := users[f[0]]; !dup {
			users[f[0]] = User{Name: f[0], UID: uid, GID: gid, Home: f[5]}
		}
	}
	return users, sc.Err()
}
