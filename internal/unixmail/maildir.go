package unixmail

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

var deliveries atomic.Uint64

// deliverHomeMaildir writes a message into ~user/name as a new Maildir
// message: tmp/ → fsync → rename into new/ → fsync new/. Everything is
// opened through an os.Root at the home directory, so a symlink planted
// by the user cannot make us write outside it. checkHome (running as
// root) refuses a home the user does not own; give chowns what is made
// to the user, for when it is not made with the user's rights already
// (runAsUser).
func deliverHomeMaildir(u User, name string, checkHome, give bool, msg io.Reader) error {
	root, err := os.OpenRoot(u.Home)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := ownHome(root, u, checkHome); err != nil {
		return err
	}
	for _, d := range []string{name, path.Join(name, "tmp"), path.Join(name, "new"), path.Join(name, "cur")} {
		if err := root.Mkdir(d, 0o700); err == nil && give {
			if err := root.Lchown(d, u.UID, u.GID); err != nil {
				return err
			}
		} else if err != nil && !os.IsExist(err) {
			return err
		}
	}
	host, _ := os.Hostname()
	unique := fmt.Sprintf("%d.M%dP%dQ%d_%s.%s", time.Now().Unix(), time.Now().Nanosecond()/1000, os.Getpid(),
		deliveries.Add(1), rand.Text()[:8], host)
	tmp := path.Join(name, "tmp", unique)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := copyLF(f, msg)
	if err == nil && give {
		err = f.Chown(u.UID, u.GID)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		root.Remove(tmp)
		return err
	}
	final := path.Join(name, "new", unique+",S="+strconv.FormatInt(n, 10))
	if err := root.Rename(tmp, final); err != nil {
		root.Remove(tmp)
		return err
	}
	dir, err := root.Open(path.Join(name, "new"))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// copyLF copies a CRLF message with LF line ends, as Maildir readers on
// Unix expect.
func copyLF(w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	pendingCR := false
	for {
		k, err := r.Read(buf)
		out := make([]byte, 0, k+1)
		for _, c := range buf[:k] {
			if pendingCR && c != '\n' {
				out = append(out, '\r')
			}
			pendingCR = c == '\r'
			if !pendingCR {
				out = append(out, c)
			}
		}
		if len(out) > 0 {
			m, werr := w.Write(out)
			n += int64(m)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			if pendingCR {
				m, werr := w.Write([]byte{'\r'})
				return n + int64(m), werr
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// ownHome refuses a home directory its user does not own: root would
// make the Maildir where the user could not (mail to bin@ made /bin/Maildir
// for bin). Postfix, delivering as the user, fails there too.
func ownHome(root *os.Root, u User, check bool) error {
	if !check {
		return nil
	}
	fi, err := root.Stat(".")
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != u.UID {
		return fmt.Errorf("home directory %s is owned by uid %d, not %s: no Maildir made there", u.Home, st.Uid, u.Name)
	}
	return nil
}
