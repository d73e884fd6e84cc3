package unixmail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// host is a fake host: a passwd file whose users all have this process's
// uid (so delivery works without root), homes and a spool under a
// temporary directory, and an aliases file.
func host(t *testing.T, aliases string, mod func(*Options)) (*System, string) {
	t.Helper()
	dir := t.TempDir()
	uid, gid := os.Geteuid(), os.Getegid()
	var pw strings.Builder
	for _, u := range []string{"root", "alice", "bob", "carol"} {
		home := filepath.Join(dir, "home", u)
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pw, "%s:x:%d:%d:%s:%s:/bin/sh\n", u, uid, gid, u, home)
	}
	write(t, filepath.Join(dir, "passwd"), pw.String(), 0o644)
	write(t, filepath.Join(dir, "aliases"), aliases, 0o644)
	os.MkdirAll(filepath.Join(dir, "spool"), 0o755)
	o := Options{Domains: []string{"host.test"}, PasswdFile: filepath.Join(dir, "passwd"), Mailbox: "mbox",
		SpoolDir: filepath.Join(dir, "spool"), Aliases: []string{filepath.Join(dir, "aliases")}, Forward: true,
		Nobody: User{Name: "nobody", UID: uid, GID: gid, Home: "/"}}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func write(t *testing.T, path, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
}

func names(ts []Target) []string {
	var out []string
	for _, t := range ts {
		switch t.Kind {
		case Mailbox:
			out = append(out, "mbox:"+t.User.Name)
		case Pipe:
			out = append(out, "pipe:"+t.Command)
		case File:
			out = append(out, "file:"+filepath.Base(t.Path))
		case Address:
			out = append(out, "addr:"+t.Addr)
		}
	}
	slices.Sort(out)
	return out
}

func TestParseAliases(t *testing.T) {
	table, err := ParseAliases(strings.NewReader("# comment\nPostmaster: root\nstaff: alice,\n  bob, \"|/usr/bin/logger -t x, y\"\n\nlist: :include:/etc/list\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := table["staff"]; !slices.Equal(got, []string{"alice", "bob", "|/usr/bin/logger -t x, y"}) {
		t.Errorf("staff = %q", got)
	}
	if got := table["postmaster"]; !slices.Equal(got, []string{"root"}) {
		t.Errorf("postmaster = %q", got)
	}
	for _, bad := range []string{"nocolon\n", "a: b\na: c\n", "a:\n", " cont\n", "a: \"open\n"} {
		if _, err := ParseAliases(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: err = %v, want one naming the line", bad, err)
		}
	}
}

func TestResolve(t *testing.T) {
	s, dir := host(t, "staff: alice, bob\nteam: staff, carol@host.test, friend@remote.test\nkeep: keep, alice\nloop1: loop2\nloop2: loop1\nrun: \"|cat >/dev/null\"\n", nil)
	cases := map[string][]string{
		"alice":      {"mbox:alice"},
		"ALICE":      {"mbox:alice"},
		"alice+tag":  {"mbox:alice"},
		"team":       {"addr:friend@remote.test", "mbox:alice", "mbox:bob", "mbox:carol"},
		"postmaster": {"mbox:root"},
		"abuse":      {"mbox:root"},
		"run":        nil, // pipes are off
	}
	for in, want := range cases {
		got, err := s.Resolve(in)
		if want == nil {
			if !errors.Is(err, ErrNoSuchUser) {
				t.Errorf("%s: %v %v, want ErrNoSuchUser", in, names(got), err)
			}
			continue
		}
		if err != nil || !slices.Equal(names(got), want) {
			t.Errorf("%s: %v %v, want %v", in, names(got), err, want)
		}
	}
	if _, err := s.Resolve("nosuch"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("nosuch: %v", err)
	}
	if _, err := s.Resolve("loop1"); !errors.Is(err, ErrLoop) {
		t.Errorf("alias loop: %v", err)
	}
	// .forward: to a remote address plus a copy kept; ignored when others can write it.
	fwd := filepath.Join(dir, "home", "bob", ".forward")
	write(t, fwd, "\\bob, bob@elsewhere.test\n", 0o644)
	if got, _ := s.Resolve("bob"); !slices.Equal(names(got), []string{"addr:bob@elsewhere.test", "mbox:bob"}) {
		t.Errorf("bob with .forward: %v", names(got))
	}
	os.Chmod(fwd, 0o666)
	if got, _ := s.Resolve("bob"); !slices.Equal(names(got), []string{"mbox:bob"}) {
		t.Errorf("bob with a world-writable .forward: %v", names(got))
	}
}

func TestResolveRootAndPipes(t *testing.T) {
	s, _ := host(t, "run: \"|/bin/true\"\n", func(o *Options) { o.Root = "alice"; o.AllowPipes = true })
	for _, in := range []string{"root", "postmaster", "mailer-daemon"} {
		if got, err := s.Resolve(in); err != nil || !slices.Equal(names(got), []string{"mbox:alice"}) {
			t.Errorf("%s: %v %v, want alice", in, names(got), err)
		}
	}
	if got, _ := s.Resolve("run"); !slices.Equal(names(got), []string{"pipe:/bin/true"}) {
		t.Errorf("run: %v", names(got))
	}
}

func TestAliasFileReloaded(t *testing.T) {
	s, dir := host(t, "x: alice\n", nil)
	if got, _ := s.Resolve("x"); !slices.Equal(names(got), []string{"mbox:alice"}) {
		t.Fatalf("x: %v", names(got))
	}
	p := filepath.Join(dir, "aliases")
	write(t, p, "x: bob\n", 0o644)
	os.Chtimes(p, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if got, _ := s.Resolve("x"); !slices.Equal(names(got), []string{"mbox:bob"}) {
		t.Errorf("after edit: %v", names(got))
	}
}

func TestMboxAppend(t *testing.T) {
	s, dir := host(t, "", nil)
	ts, _ := s.Resolve("alice")
	msgs := []string{
		"Subject: one\r\n\r\nFrom the start\r\n>From quoted\r\nend",
		"Subject: two\r\n\r\nbody\r\n",
	}
	for _, m := range msgs {
		if err := s.Deliver(context.Background(), ts[0], "sender@remote.test", strings.NewReader(m)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "spool", "alice")
	b, _ := os.ReadFile(path)
	got := string(b)
	if strings.Contains(got, "\r") {
		t.Error("CR left in the mbox")
	}
	for _, want := range []string{"From sender@remote.test ", "\n>From the start\n", "\n>>From quoted\n", "\nend\n\nFrom sender@remote.test ", "\nbody\n\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("mbox lacks %q:\n%s", want, got)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Error("dot-lock left behind")
	}
}

func TestMboxRefusesLinks(t *testing.T) {
	s, dir := host(t, "", nil)
	ts, _ := s.Resolve("alice")
	victim := filepath.Join(dir, "victim")
	write(t, victim, "precious\n", 0o600)
	os.Symlink(victim, filepath.Join(dir, "spool", "alice"))
	if err := s.Deliver(context.Background(), ts[0], "x@y.test", strings.NewReader("Subject: x\r\n\r\nx\r\n")); err == nil {
		t.Error("delivered through a symlink")
	}
	os.Remove(filepath.Join(dir, "spool", "alice"))
	os.Link(victim, filepath.Join(dir, "spool", "alice"))
	if err := s.Deliver(context.Background(), ts[0], "x@y.test", strings.NewReader("Subject: x\r\n\r\nx\r\n")); err == nil {
		t.Error("delivered through a hard link")
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("victim changed: %q", b)
	}
}

// TestMboxConcurrent: deliveries at once, and a reader holding the lock a
// while, end with every message whole.
func TestMboxConcurrent(t *testing.T) {
	s, dir := host(t, "", nil)
	ts, _ := s.Resolve("alice")
	path := filepath.Join(dir, "spool", "alice")
	spool, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	unlock, err := dotLock(spool, "alice") // another program holds the lock for a moment
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); unlock() }()
	deliverMany(t, s, ts[0], path, 20)
}

func TestHomeMaildir(t *testing.T) {
	s, dir := host(t, "", func(o *Options) { o.Mailbox = "maildir" })
	ts, _ := s.Resolve("carol")
	if err := s.Deliver(context.Background(), ts[0], "a@b.test", strings.NewReader("Subject: m\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "home", "carol", "Maildir", "new"))
	if len(ents) != 1 {
		t.Fatalf("%d messages in new/", len(ents))
	}
	// A Maildir symlinked out of the home directory is not written through.
	os.RemoveAll(filepath.Join(dir, "home", "bob", "Maildir"))
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(filepath.Join(outside, "new"), 0o755)
	os.Symlink(outside, filepath.Join(dir, "home", "bob", "Maildir"))
	bob, _ := s.Resolve("bob")
	if err := s.Deliver(context.Background(), bob[0], "a@b.test", strings.NewReader("Subject: m\r\n\r\nbody\r\n")); err == nil {
		t.Error("delivered through a symlink out of the home directory")
	}
}

func TestPipe(t *testing.T) {
	s, dir := host(t, "", func(o *Options) { o.AllowPipes = true })
	u, _, _ := s.passwd.lookup("alice")
	out := filepath.Join(dir, "piped")
	ok := Target{Kind: Pipe, User: u, Command: "cat > " + out}
	if err := s.Deliver(context.Background(), ok, "a@b.test", strings.NewReader("Subject: p\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "Subject: p\n\nbody\n" {
		t.Errorf("piped %q", b)
	}
	err := s.Deliver(context.Background(), Target{Kind: Pipe, User: u, Command: "exit 75"}, "", strings.NewReader("x\r\n"))
	var p Permanent
	if err == nil || errors.As(err, &p) {
		t.Errorf("exit 75: %v, want a temporary error", err)
	}
	err = s.Deliver(context.Background(), Target{Kind: Pipe, User: u, Command: "echo nope; exit 1"}, "", strings.NewReader("x\r\n"))
	if !errors.As(err, &p) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("exit 1: %v, want a permanent error with the output", err)
	}
}

// TestPipeOutputAndLeftovers: only the start of a command's output is
// kept ("|yes" grew the daemon by a gigabyte), and a process the command
// leaves behind holding its output open does not hold the delivery.
func TestPipeOutputAndLeftovers(t *testing.T) {
	s, _ := host(t, "", func(o *Options) { o.AllowPipes = true; o.PipeTimeout = 20 * time.Second })
	u, _, _ := s.passwd.lookup("alice")
	err := s.Deliver(context.Background(), Target{Kind: Pipe, User: u, Command: "head -c 50000000 /dev/zero | tr '\\0' x; exit 1"}, "", strings.NewReader("x\r\n"))
	var p Permanent
	if !errors.As(err, &p) || len(err.Error()) > 1000 {
		t.Errorf("50 MB of output: %d octets of error, %T", len(err.Error()), err)
	}
	start := time.Now()
	err = s.Deliver(context.Background(), Target{Kind: Pipe, User: u, Command: "(sleep 15 &) ; exit 0"}, "", strings.NewReader("x\r\n"))
	if err != nil || time.Since(start) > 5*time.Second {
		t.Errorf("a command that leaves a process behind: %v after %v", err, time.Since(start))
	}
}

// TestForwardFIFO: a FIFO as .forward is not read (opening it waited for
// a writer for ever, holding every delivery to the user).
func TestForwardFIFO(t *testing.T) {
	s, dir := host(t, "", nil)
	if err := syscall.Mkfifo(filepath.Join(dir, "home", "alice", ".forward"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan []Target, 1)
	go func() { ts, _ := s.Resolve("alice"); done <- ts }()
	select {
	case ts := <-done:
		if got := names(ts); !slices.Equal(got, []string{"mbox:alice"}) {
			t.Errorf("targets %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Resolve hangs on a FIFO .forward")
	}
}

// TestFileTargetStaysInHome: a .forward file target is resolved inside
// the home: a link in its path that leads out (~/etcdir -> /etc) is not
// followed, and nothing is created out there.
func TestFileTargetStaysInHome(t *testing.T) {
	s, dir := host(t, "", func(o *Options) { o.AllowFiles = true })
	home := filepath.Join(dir, "home", "alice")
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o755)
	os.Symlink(outside, filepath.Join(home, "etcdir"))
	write(t, filepath.Join(home, ".forward"), filepath.Join(home, "etcdir", "preload")+"\n"+filepath.Join(home, "mail", "saved")+"\n", 0o644)
	os.MkdirAll(filepath.Join(home, "mail"), 0o755)
	ts, err := s.Resolve("alice")
	if err != nil || len(ts) != 2 {
		t.Fatalf("targets %q %v", names(ts), err)
	}
	for _, tg := range ts {
		err := s.Deliver(context.Background(), tg, "a@b.test", strings.NewReader("Subject: f\r\n\r\nbody\r\n"))
		inHome := strings.HasSuffix(tg.Path, "saved")
		if inHome != (err == nil) {
			t.Errorf("%s: %v", tg.Path, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("created outside the home: %v", ents)
	}
}

// TestSpoolPreplantRefused: an existing mailbox owned by someone else is
// refused even when empty (a user who may write the spool directory left
// an empty 0666 file for another's mail, which was then given to that
// user as it was, readable by all); one made here is 0600.
func TestSpoolPreplantRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test gives a file to another uid and must run as root (uid %d): CI runs the tests as root", os.Geteuid())
	}
	s, dir := host(t, "", nil)
	ts, _ := s.Resolve("alice")
	planted := filepath.Join(dir, "spool", "alice")
	write(t, planted, "", 0o666)
	if err := os.Chown(planted, 54321, 54321); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), ts[0], "a@b.test", strings.NewReader("Subject: secret\r\n\r\nbody\r\n")); err == nil {
		t.Error("delivered into a mailbox planted by another uid")
	}
	if fi, _ := os.Stat(planted); fi.Size() != 0 || fi.Sys().(*syscall.Stat_t).Uid != 54321 {
		t.Errorf("the planted file changed: %v", fi)
	}
	os.Remove(planted)
	if err := s.Deliver(context.Background(), ts[0], "a@b.test", strings.NewReader("Subject: m\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(planted); fi.Mode().Perm() != 0o600 {
		t.Errorf("a new mailbox has mode %v", fi.Mode().Perm())
	}
}

// TestMaildirHomeNotTheUsers: as root, no Maildir is made in a home the
// user does not own (mail to bin@ made /bin/Maildir).
func TestMaildirHomeNotTheUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test gives a directory to another uid and must run as root (uid %d): CI runs the tests as root", os.Geteuid())
	}
	s, dir := host(t, "", func(o *Options) { o.Mailbox = "maildir"; o.MaildirName = "Maildir" })
	home := filepath.Join(dir, "home", "alice")
	if err := os.Chown(home, 54321, 54321); err != nil {
		t.Fatal(err)
	}
	ts, _ := s.Resolve("alice")
	if err := s.Deliver(context.Background(), ts[0], "a@b.test", strings.NewReader("Subject: m\r\n\r\nbody\r\n")); err == nil {
		t.Error("delivered into a home owned by another uid")
	}
	if _, err := os.Stat(filepath.Join(home, "Maildir")); err == nil {
		t.Error("a Maildir was made in it")
	}
}

// TestPipeGetsNoInheritedDescriptors: a descriptor the daemon was started
// with (not close-on-exec) does not reach a pipe command.
func TestPipeGetsNoInheritedDescriptors(t *testing.T) {
	s, dir := host(t, "", func(o *Options) { o.AllowPipes = true })
	fd, err := syscall.Open(filepath.Join(dir, "passwd"), syscall.O_RDONLY, 0) // no O_CLOEXEC: as if inherited
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	markInheritedCloseOnExec() // what the first pipe does, once
	u, _, _ := s.passwd.lookup("alice")
	out := filepath.Join(dir, "fds")
	if err := s.Deliver(context.Background(), Target{Kind: Pipe, User: u, Command: "ls /proc/self/fd > " + out}, "", strings.NewReader("x\r\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if slices.Contains(strings.Fields(string(b)), strconv.Itoa(fd)) {
		t.Errorf("descriptor %d reached the pipe command: %q", fd, b)
	}
}

// TestRootPipesRunAsNobody: a pipe in root's own .forward runs as the
// unprivileged user, like Postfix's default_privs, never as root.
func TestRootPipesRunAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs a root account of uid 0 and must run as root (uid %d): CI runs the tests as root", os.Geteuid())
	}
	s, dir := host(t, "", func(o *Options) {
		o.AllowPipes = true
		o.Nobody = User{Name: "nobody", UID: 65534, GID: 65534, Home: "/"}
	})
	write(t, filepath.Join(dir, "home", "root", ".forward"), "\"|cat > /dev/null\"\n", 0o644)
	ts, err := s.Resolve("root")
	if err != nil || len(ts) != 1 || ts[0].Kind != Pipe {
		t.Fatalf("targets %q %v", names(ts), err)
	}
	if ts[0].User.UID != 65534 {
		t.Errorf("root's pipe runs as uid %d, want nobody's 65534", ts[0].User.UID)
	}
}

// deliverMany delivers n distinct messages to tg at once and checks that
// the mbox at path then holds each of them, whole.
func deliverMany(t *testing.T, s *System, tg Target, path string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("Subject: %d\r\nMessage-ID: <%d@x>\r\n\r\n%s\r\n", i, i, strings.Repeat("line\r\n", 1000))
			errs <- s.Deliver(context.Background(), tg, "a@b.test", strings.NewReader(msg))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	if c := strings.Count(string(b), "\nFrom a@b.test ") + 1; c != n || strings.Count(string(b), "Message-ID:") != n {
		t.Errorf("%d From lines, %d messages, want %d", c, strings.Count(string(b), "Message-ID:"), n)
	}
}
