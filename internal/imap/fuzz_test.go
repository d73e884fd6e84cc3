package imap_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"posthorn/internal/daemon"
	"posthorn/internal/imap"
	"posthorn/internal/store/local"
	"posthorn/internal/users"
)

// memConn is a net.Conn whose input is fixed and whose output is kept.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error)       { return m.in.Read(p) }
func (m *memConn) Write(p []byte) (int, error)      { return m.out.Write(p) }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 143} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzSession runs arbitrary input through an authenticated session on a
// real store: the server must never panic, and must answer every line.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"a SELECT INBOX\r\nb FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY.PEEK[1.MIME] BINARY[2]<0.10>)\r\nc LOGOUT\r\n",
		"a APPEND INBOX (\\Seen) {15+}\r\nSubject: x\r\n\r\nb\r\nb SELECT INBOX (CONDSTORE)\r\nc UID STORE 1:* +FLAGS.SILENT (\\Deleted) (UNCHANGEDSINCE 5)\r\nd EXPUNGE\r\n",
		"a SELECT INBOX\r\nb SEARCH RETURN (MIN MAX) CHARSET UTF-8 OR (FROM x SUBJECT y) NOT (LARGER 10 SENTBEFORE 1-Jan-2020)\r\n",
		"a LIST (SUBSCRIBED) \"\" (\"*\" \"%\") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\nb CREATE \"a/b\"\r\nc RENAME a z\r\nd DELETE z/b\r\n",
		"a ENABLE QRESYNC\r\nb SELECT INBOX (QRESYNC (1 1 1:5 (1 1)))\r\nc UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)\r\nd IDLE\r\nDONE\r\n",
		"a SELECT INBOX\r\nb COPY 1:* Trash\r\nc MOVE 1 Archive\r\nd GETQUOTAROOT INBOX\r\ne ID NIL\r\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	var once sync.Once
	var srv *imap.Server
	var user imap.User
	f.Fuzz(func(t *testing.T, in []byte) {
		once.Do(func() { srv, user = fuzzEnv(t, dir) })
		mc := &memConn{in: bytes.NewReader(in)}
		imap.ServeAuthenticated(srv, mc, user)
		if srv.Panics() != 0 {
			t.Fatalf("panic on %q", in)
		}
	})
}

func fuzzEnv(f *testing.T, dir string) (*imap.Server, imap.User) {
	st, err := local.Open(local.Options{Dir: dir, Hostname: "mx.test"})
	if err != nil {
		f.Fatal(err)
	}
	us, _ := users.New(users.Options{Directory: st})
	ctx := context.Background()
	us.AddDomain(ctx, "example.test")
	us.AddAccount(ctx, "me", "example.test", password)
	be := daemon.IMAPBackend(us, st)
	u, err := be.Open(ctx, "me@example.test")
	if err != nil {
		f.Fatal(err)
	}
	srv, _ := imap.New(imap.Options{Hostname: "mx.test", Backend: be})
	return srv, u
}
