package fetch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// pop3Once is one POP3 session: list, deliver what is new, delete what is
// delivered (unless keep) and QUIT, which commits the deletions
// (RFC 1939 §6).
func (f *Fetcher) pop3Once(ctx context.Context) (Stats, error) {
	var st Stats
	conn, ctl, stop, err := f.dial(ctx)
	if err != nil {
		return st, err
	}
	defer stop()
	c := newPOP3Client(conn)
	c.begin = ctl.begin
	defer func() { c.conn.Close() }()
	if err := f.pop3Login(ctx, c); err != nil {
		return st, err
	}
	es, err := c.list()
	if err != nil {
		return st, err
	}
	if err := f.pop3Forget(es); err != nil {
		return st, err
	}
	var deleted []string
	var passErr error
	unusable := 0
	for _, e := range es {
		if ctx.Err() != nil {
			passErr = ctx.Err()
			break
		}
		if e.unusable {
			unusable++
			continue
		}
		handled, wasDelivered := f.state.UIDL(e.uidl)
		if !handled {
			var o outcome
			o, passErr = f.pop3Message(ctx, c, e)
			if passErr != nil {
				break
			}
			st.count(o)
			handled, wasDelivered = true, o == delivered
		}
		if handled && wasDelivered && !f.src.Keep {
			if _, err := c.cmd("DELE", strconv.Itoa(e.n)); err != nil {
				passErr = err
				break
			}
			deleted = append(deleted, e.uidl)
		}
	}
	if errors.Is(passErr, errTooBig) || isConnErr(passErr) {
		return st, passErr // the session is unusable: nothing is deleted
	}
	if _, err := c.cmd("QUIT"); err != nil {
		return st, errors.Join(passErr, fmt.Errorf("deletions not committed: %w", err))
	}
	st.Deleted = len(deleted)
	if unusable > 0 {
		passErr = errors.Join(passErr, fmt.Errorf("%d messages left on the server: their UIDLs are shared or not printable ASCII (RFC 1939 §7), so they cannot be told apart", unusable))
	}
	return st, errors.Join(passErr, f.state.GoneUIDLs(deleted))
}

// count adds one message's outcome.
func (s *Stats) count(o outcome) {
	switch o {
	case delivered:
		s.Fetched++
	case skipped:
		s.Skipped++
	case duplicate:
		s.Duplicates++
	}
}

// isConnErr reports whether err came from the connection rather than
// from a -ERR or from local delivery.
func isConnErr(err error) bool {
	var pe *pop3Error
	return err != nil && !errors.As(err, &pe) && !errors.Is(err, errDeliver)
}

// errDeliver wraps local delivery failures.
var errDeliver = errors.New("local delivery")

// pop3Login reads the greeting, upgrades to TLS for starttls, and logs in.
func (f *Fetcher) pop3Login(ctx context.Context, c *pop3Client) error {
	if err := c.greeting(); err != nil {
		return err
	}
	if f.src.TLS == TLSStart {
		caps, err := c.capa()
		if err != nil {
			return err
		}
		if caps != nil && !caps["STLS"] {
			return errors.New("pop3: server does not offer STLS")
		}
		if err := c.stls(f.tls); err != nil {
			return err
		}
	}
	pw, err := f.src.Password(ctx)
	if err != nil {
		return err
	}
	return c.login(f.src.User, pw)
}

// pop3Forget drops state about messages no longer in the maildrop, and
// pending deliveries of messages gone meanwhile.
func (f *Fetcher) pop3Forget(es []pop3Entry) error {
	present := make(map[string]bool, len(es))
	for _, e := range es {
		present[e.uidl] = true
	}
	var gone []string
	for _, u := range f.state.UIDLs() {
		if !present[u] {
			gone = append(gone, u)
		}
	}
	if err := f.state.GoneUIDLs(gone); err != nil {
		return err
	}
	ids := map[string]bool{}
	for _, e := range es {
		ids[pop3ID(f.src.Name, e.uidl)] = true
	}
	for _, p := range f.state.Pendings(f.src.Name + "/pop3/") {
		if !ids[p.ID] {
			if err := f.state.Clear(p.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// pop3Message fetches and delivers message e.
func (f *Fetcher) pop3Message(ctx context.Context, c *pop3Client, e pop3Entry) (outcome, error) {
	id := pop3ID(f.src.Name, e.uidl)
	if e.size > f.opts.MaxSize {
		f.refused(id, fmt.Errorf("%d octets, more than the maximum message size %d", e.size, f.opts.MaxSize))
		return skipped, f.state.SkipUIDL(e.uidl, "")
	}
	// The listed size is the server's; allow for a different count of
	// line ends, but never past the limit.
	msg, err := c.retr(e.n, f.opts.MaxSize)
	if errors.Is(err, errTooBig) {
		// The server listed it smaller; the session is lost, not the message.
		return 0, errors.Join(err, f.state.SkipUIDL(e.uidl, ""))
	}
	if err != nil {
		return 0, err
	}
	if len(msg) == 0 && e.size > 0 {
		// An empty RETR for a message LIST gave a size: a server that
		// could not read it for now. Recording it as fetched would lose
		// the real message; fail the pass and try again, and after a few
		// passes leave it on the server, not holding back later mail.
		err := fmt.Errorf("pop3 RETR %d: no content for a message listed with %d octets", e.n, e.size)
		if f.unreadable(id) {
			f.refused(id, err)
			return skipped, f.state.SkipUIDL(e.uidl, id) // id ends its count
		}
		return 0, err
	}
	h := header(msg)
	if looped(h, f.src.Name) {
		f.refused(id, errors.New("it already went through this source (a loop)"))
		return skipped, f.state.SkipUIDL(e.uidl, "")
	}
	id, err = f.deliver(ctx, id, "", msg, h, nil)
	if errors.Is(err, ErrRefused) {
		f.refused(id, err)
		return skipped, f.state.SkipUIDL(e.uidl, id)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errDeliver, err)
	}
	return delivered, f.state.DoneUIDL(e.uidl, id)
}
