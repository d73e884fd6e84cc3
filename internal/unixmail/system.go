// Package unixmail is classic Unix mail for the host's own accounts: a
// local part is a login name from the passwd file, mail goes to
// /var/mail/USER (mbox) or ~USER/Maildir, and /etc/aliases and ~/.forward
// can send it elsewhere, to programs or to files when the operator allows.
//
// It owns files outside posthorn's data directory, so it is strict about
// them: spool files must be plain files with one link owned by their user,
// Maildirs in home directories and file targets are written through an
// os.Root (no symlink leads out) and with their user's rights, .forward
// files are ignored and :include: files deferred when others could have
// written them, and pipes and file targets are off unless enabled.
//
// Files: system.go resolves addresses, mbox.go and maildir.go write,
// fscreds_*.go lend them a user's rights, pipe.go runs programs,
// aliases.go and passwd.go read the tables.
package unixmail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options configure a System.
type Options struct {
	Domains     []string // lower-case domains whose users are host accounts
	PasswdFile  string
	Mailbox     string // "mbox" or "maildir"
	SpoolDir    string
	MaildirName string
	Aliases     []string
	Forward     bool
	AllowPipes  bool
	AllowFiles  bool
	Root        string // where root's mail goes when no alias says; "" = root's mailbox
	PipeTimeout time.Duration
	// Nobody runs pipes and file writes from alias files; default uid/gid
	// 65534.
	Nobody User
	Logger *slog.Logger
}

// System resolves and delivers for the host's accounts.
type System struct {
	opts    Options
	passwd  *passwd
	aliases *aliasFiles
	log     *slog.Logger
	chown   bool // running as root: files are given to their users
}

// Errors.
var (
	ErrNoSuchUser = errors.New("unixmail: no such user")
	ErrLoop       = errors.New("unixmail: alias or forward loop, or expansion too deep or too wide")
	// ErrConfig: an alias or :include: file is broken, so where the mail
	// should go is not known. Temporary: fixing the file delivers it.
	ErrConfig = errors.New("unixmail: mail system configuration error")
)

// Limits of expansion.
const (
	maxDepth   = 10
	maxTargets = 1000
)

// New returns a System.
func New(opts Options) (*System, error) {
	if opts.PasswdFile == "" || opts.SpoolDir == "" {
		return nil, errors.New("unixmail: PasswdFile and SpoolDir are required")
	}
	if opts.Mailbox != "mbox" && opts.Mailbox != "maildir" {
		return nil, fmt.Errorf("unixmail: mailbox %q: want mbox or maildir", opts.Mailbox)
	}
	if opts.MaildirName == "" {
		opts.MaildirName = "Maildir"
	}
	if opts.PipeTimeout <= 0 {
		opts.PipeTimeout = 5 * time.Minute
	}
	if opts.Nobody.Name == "" {
		opts.Nobody = User{Name: "nobody", UID: 65534, GID: 65534, Home: "/"}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &System{opts: opts, passwd: &passwd{path: opts.PasswdFile}, aliases: &aliasFiles{paths: opts.Aliases, log: log},
		log: log, chown: os.Geteuid() == 0}, nil
}

// HasDomain tells whether domain (lower-case) is one of ours.
func (s *System) HasDomain(domain string) bool {
	return s != nil && slices.Contains(s.opts.Domains, strings.ToLower(domain))
}

// Kind is what a Target does with a message.
type Kind int

// Kinds of target.
const (
	Mailbox Kind = iota // the user's mbox or Maildir
	Pipe                // a command reading the message on its input
	File                // an mbox file appended to
	Address             // an address in another domain, for the queue
)

// Target is one destination of a resolved address.
type Target struct {
	Kind    Kind
	User    User   // the mailbox owner; for Pipe and File, whom they run as
	Command string // Pipe
	Path    string // File
	Addr    string // Address
}

func (t Target) String() string {
	switch t.Kind {
	case Pipe:
		return "|" + t.Command + " (as " + t.User.Name + ")"
	case File:
		return t.Path + " (as " + t.User.Name + ")"
	case Address:
		return t.Addr
	}
	return "mailbox of " + t.User.Name
}

// adminNames reach root when nothing else claims them (RFC 5321 §4.5.1,
// RFC 2142).
var adminNames = []string{"postmaster", "abuse", "hostmaster", "mailer-daemon"}

// Resolve expands a local part of one of our domains. ErrNoSuchUser means
// nothing matched; ErrLoop that the expansion went round in a circle (or
// too deep, or too wide) and reached nothing else.
func (s *System) Resolve(local string) ([]Target, error) {
	r := &expansion{s: s, seen: map[string]bool{}, active: map[string]bool{}}
	if err := r.name(strings.ToLower(local), 0); err != nil {
		return nil, err
	}
	if len(r.out) == 0 {
		if r.looped {
			return nil, ErrLoop // Postfix: 5.4.6 mail forwarding loop
		}
		return nil, ErrNoSuchUser
	}
	return r.out, nil
}

type expansion struct {
	s      *System
	seen   map[string]bool // names expanded already (a name reached twice adds nothing)
	active map[string]bool // names being expanded: meeting one again is a loop
	looped bool
	out    []Target
}

func (r *expansion) add(t Target) error {
	for _, o := range r.out {
		if o == t {
			return nil
		}
	}
	if len(r.out) >= maxTargets {
		return ErrLoop
	}
	r.out = append(r.out, t)
	return nil
}

// name expands a local part: alias, then account (with .forward), then
// sub-address, then the administrative defaults.
func (r *expansion) name(name string, depth int) error {
	if depth > maxDepth {
		return ErrLoop
	}
	if r.active[name] {
		// a → b → a: this branch adds nothing; if no other does, the
		// address is a loop, not an unknown user.
		r.looped = true
		r.s.log.Warn("unix mail: alias or .forward loop", "name", name)
		return nil
	}
	if r.seen[name] {
		return nil // a diamond (a → b, c; b → c): c is there already
	}
	r.seen[name], r.active[name] = true, true
	defer delete(r.active, name)
	return r.expand(name, depth)
}

func (r *expansion) expand(name string, depth int) error {
	ts, ok, err := r.s.aliases.lookup(name)
	if err != nil {
		return err
	}
	if ok {
		return r.targets(ts, name, r.s.opts.Nobody, depth, false)
	}
	u, ok, err := r.s.passwd.lookup(name)
	if err != nil {
		return err
	}
	if ok {
		return r.account(u, depth)
	}
	if base, _, cut := strings.Cut(name, "+"); cut && base != "" {
		return r.name(base, depth+1)
	}
	switch {
	case name == "root" && r.s.opts.Root != "":
		return r.target(r.s.opts.Root, name, r.s.opts.Nobody, depth+1, false)
	case slices.Contains(adminNames, name):
		return r.name("root", depth+1)
	}
	return nil
}

// account delivers to a user, through ~/.forward when there is one.
func (r *expansion) account(u User, depth int) error {
	if u.Name == "root" && r.s.opts.Root != "" && !r.seen["\\root"] {
		r.seen["\\root"] = true
		return r.target(r.s.opts.Root, "root", r.s.opts.Nobody, depth+1, false)
	}
	if r.s.opts.Forward {
		if ts, ok := r.s.forward(u); ok {
			return r.targets(ts, u.Name, u, depth, true)
		}
	}
	return r.add(Target{Kind: Mailbox, User: u})
}

func (r *expansion) targets(ts []string, self string, as User, depth int, fromForward bool) error {
	for _, t := range ts {
		if err := r.target(t, self, as, depth+1, fromForward); err != nil {
			return err
		}
	}
	return nil
}

// target expands one entry of an alias list or .forward file. self is the
// name being expanded: "self" or "\self" in its own list means its mailbox.
func (r *expansion) target(t, self string, as User, depth int, fromForward bool) error {
	switch {
	case strings.HasPrefix(t, "|"):
		if !r.s.opts.AllowPipes {
			r.s.log.Warn("unix mail: pipe target ignored (allow_pipes is off)", "name", self)
			return nil
		}
		if as.UID == 0 {
			// Root's own pipes run as nobody, like Postfix's default_privs:
			// a message's content is never handed to a root shell.
			as = r.s.opts.Nobody
		}
		return r.add(Target{Kind: Pipe, User: as, Command: strings.TrimSpace(t[1:])})
	case strings.HasPrefix(t, ":include:"):
		return r.include(strings.TrimSpace(strings.TrimPrefix(t, ":include:")), self, depth, fromForward)
	case strings.HasPrefix(t, "/"):
		if !r.s.opts.AllowFiles {
			r.s.log.Warn("unix mail: file target ignored (allow_files is off)", "name", self)
			return nil
		}
		p := filepath.Clean(t)
		if fromForward && !strings.HasPrefix(p, filepath.Clean(as.Home)+"/") {
			r.s.log.Warn("unix mail: .forward file target outside the home directory ignored", "user", as.Name, "path", p)
			return nil
		}
		return r.add(Target{Kind: File, User: as, Path: p})
	case strings.HasPrefix(t, "\\"):
		return r.mailboxOf(strings.ToLower(t[1:]))
	}
	local, domain, hasAt := strings.Cut(t, "@")
	if hasAt && !r.s.HasDomain(domain) {
		return r.add(Target{Kind: Address, Addr: t})
	}
	local = strings.ToLower(local)
	mine, err := r.isSelf(local, self)
	if err != nil {
		return err
	}
	if mine {
		return r.mailboxOf(local) // "user: user, other" keeps a copy
	}
	return r.name(local, depth)
}

// isSelf tells whether local, in the list of self, means self's own
// mailbox: self, or self+detail when no alias claims that name (a
// .forward of "alice+archive, bob" kept no copy for alice: alice+archive
// led back to alice, already being expanded).
func (r *expansion) isSelf(local, self string) (bool, error) {
	if local == self {
		return true, nil
	}
	base, _, cut := strings.Cut(local, "+")
	if !cut || base != self {
		return false, nil
	}
	_, alias, err := r.s.aliases.lookup(local)
	return !alias, err
}

// mailboxOf is the mailbox of a login name, without aliases or .forward;
// a sub-address (\alice+tag) is alice's.
func (r *expansion) mailboxOf(name string) error {
	u, ok, err := r.s.passwd.lookup(name)
	if err == nil && !ok {
		if base, _, cut := strings.Cut(name, "+"); cut && base != "" {
			u, ok, err = r.s.passwd.lookup(base)
		}
	}
	if err != nil || !ok {
		return err
	}
	return r.add(Target{Kind: Mailbox, User: u})
}

// include reads a :include: file. Only alias files may include
// (sendmail allows it in .forward too, which hands users a way to read
// other files as root; we do not).
//
// An include file that cannot be used (missing, unreadable, not a plain
// file, writable or owned by others, not parsing) is a temporary failure
// naming the configuration (ErrConfig): its list is unknown, and a 550
// "no such user" for a list that exists lost the mail of every member.
// Postfix says "mail system configuration error" (5.3.5/4.3.5) here;
// deferring lets the administrator fix the file before the mail is lost.
func (r *expansion) include(path, self string, depth int, fromForward bool) error {
	if fromForward {
		r.s.log.Warn("unix mail: :include: in .forward ignored", "name", self)
		return nil
	}
	ts, err := readInclude(path)
	if err != nil {
		r.s.log.Error("unix mail: include file unusable: mail to the alias is deferred", "name", self, "path", path, "err", err)
		return fmt.Errorf("%w: :include:%s of %q: %v", ErrConfig, path, self, err)
	}
	return r.targets(ts, self, r.s.opts.Nobody, depth, false)
}

// readInclude reads the targets of an include file, which must be named
// by an absolute path and be trusted.
func readInclude(path string) ([]string, error) {
	if !filepath.IsAbs(path) {
		return nil, errors.New("not an absolute path")
	}
	f, err := openTrusted(path, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseTargetFile(f)
}

// forward reads ~user/.forward, when it may be trusted: a regular file
// owned by the user or root and writable by nobody else.
func (s *System) forward(u User) ([]string, bool) {
	root, err := os.OpenRoot(u.Home)
	if err != nil {
		return nil, false
	}
	defer root.Close()
	// O_NONBLOCK: a FIFO as .forward held every delivery to the user
	// (and a connection and thread each) until someone wrote to it.
	f, err := root.OpenFile(".forward", os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	if err := trusted(f, u.UID); err != nil {
		s.log.Warn("unix mail: .forward ignored", "user", u.Name, "err", err)
		return nil, false
	}
	ts, err := ParseTargetFile(f)
	if err != nil || len(ts) == 0 {
		if err != nil {
			s.log.Warn("unix mail: .forward unreadable", "user", u.Name, "err", err)
		}
		return nil, false
	}
	return ts, true
}

// openTrusted opens a file that root or owner owns and nobody else can
// write.
func openTrusted(path string, owner int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := trusted(f, owner); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func trusted(f *os.File, owner int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return errors.New("not a regular file")
	case fi.Mode().Perm()&0o022 != 0:
		return errors.New("writable by group or others")
	case ok && int(st.Uid) != owner && st.Uid != 0:
		return fmt.Errorf("owned by uid %d", st.Uid)
	}
	return nil
}

// Deliver writes msg (CRLF, complete with its trace fields) to one
// target. from is the envelope sender ("" for the null sender). Errors
// wrapping Permanent must not be retried.
func (s *System) Deliver(ctx context.Context, t Target, from string, msg io.Reader) error {
	if !s.chown && t.Kind != Address && t.User.UID != os.Geteuid() {
		return fmt.Errorf("unix mail for %s (uid %d) needs posthorn to run as root", t.User.Name, t.User.UID)
	}
	switch t.Kind {
	case Mailbox:
		if s.opts.Mailbox == "maildir" {
			return s.deliverMaildir(t.User, msg)
		}
		// The spool directory is the administrator's, not the user's:
		// root makes the file there and gives it away, refusing one it
		// did not make that is not the user's (openSpool).
		return appendAt(s.opts.SpoolDir, t.User.Name, t.User, spoolMode{chown: s.chown}, from, msg)
	case File:
		return s.deliverFile(t, from, msg)
	case Pipe:
		return s.runPipe(ctx, t, from, msg)
	}
	return fmt.Errorf("unixmail: cannot deliver to %s here", t)
}

// deliverMaildir writes to the user's home Maildir with the user's
// rights, so that the kernel refuses what the user could not do there
// (a ~/Maildir linked to a root-owned directory inside the home). Where
// that cannot be done (not Linux), root makes it and gives it away, in a
// home the user owns.
func (s *System) deliverMaildir(u User, msg io.Reader) error {
	name := s.opts.MaildirName
	switch {
	case !s.chown:
		return deliverHomeMaildir(u, name, false, false, msg)
	case !fsCredsPerThread:
		return deliverHomeMaildir(u, name, true, true, msg)
	}
	return runAsUser(u, func() error { return deliverHomeMaildir(u, name, true, false, msg) })
}

// deliverFile appends to a file target with its user's rights (Postfix
// local(8): the recipient's for .forward, default_privs, our Nobody, for
// the alias files), the file and its dot-lock made by that user. A
// refusal by the kernel bounces, as Postfix's does (5.2.0 "cannot append
// message to file"): trying again does not change a file's permissions,
// and a bounce tells the sender at once. Where the rights cannot be
// checked (not Linux), file targets are refused.
func (s *System) deliverFile(t Target, from string, msg io.Reader) error {
	dir, name := fileRoot(t)
	write := func() error {
		return appendAt(dir, name, t.User, spoolMode{dotLockMayFail: true}, from, msg)
	}
	var err error
	switch {
	case !s.chown:
		err = write()
	case !fsCredsPerThread:
		return Permanent{fmt.Errorf("file target %s refused: %w", t.Path, runAsUser(t.User, write))}
	default:
		err = runAsUser(t.User, write)
	}
	if errors.Is(err, fs.ErrPermission) {
		return Permanent{fmt.Errorf("cannot append message to file %s as %s: %w", t.Path, t.User.Name, err)}
	}
	return err
}

// appendAt appends to the mbox name inside the directory dir, resolved
// as an os.Root: no link leads out of it.
func appendAt(dir, name string, u User, mode spoolMode, from string, msg io.Reader) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return appendMbox(root, name, u, mode, from, time.Now(), msg)
}

// fileRoot is where a file target is resolved: a file in its user's home
// (every .forward file target is) inside the home, so that no link in
// the path leads out of it; an alias file's target, which the
// administrator wrote, in its own directory.
func fileRoot(t Target) (dir, name string) {
	home := filepath.Clean(t.User.Home)
	if rel, ok := strings.CutPrefix(t.Path, home+"/"); ok && home != "/" {
		return home, rel
	}
	return filepath.Dir(t.Path), filepath.Base(t.Path)
}

// Permanent marks an error that retrying cannot fix.
type Permanent struct{ Err error }

func (p Permanent) Error() string { return p.Err.Error() }
func (p Permanent) Unwrap() error { return p.Err }
