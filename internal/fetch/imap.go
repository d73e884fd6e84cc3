package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"posthorn/internal/imapconn"
)

// imapSession is one logged-in IMAP connection.
type imapSession struct {
	f      *Fetcher
	c      *imapclient.Client
	ctl    *deadlineConn
	stop   func() bool
	exists chan struct{} // a new message count arrived (EXISTS)

	folder string // selected
	uv     uint32 // its UIDVALIDITY
	fresh  bool   // selected, no pass yet: reconcile first

	guard  *imapconn.Guard // every octet from the server passes it
	uvSeen int64           // guard's UIDVALIDITY count at SELECT
}

// Tuning of a pass.
const (
	imapListChunk   = 200 // UIDs listed (size and fingerprint fields) per FETCH
	imapDeleteBatch = 100 // delivered messages deleted per STORE + EXPUNGE
	// maxListedHeader bounds the fingerprint fields read per listed
	// message (the rest is discarded), so a chunk holds at most 3 MiB.
	maxListedHeader = 16 << 10
)

// imapLiteralSlack is what one response may carry beyond the largest
// message: envelopes, header fields, and a response line as long as a
// UID SEARCH of a very large folder.
const imapLiteralSlack = 8 << 20

// imapConnect dials, upgrades to TLS as configured, and logs in.
func (f *Fetcher) imapConnect(ctx context.Context) (*imapSession, error) {
	conn, ctl, stop, err := f.dial(ctx)
	if err != nil {
		return nil, err
	}
	s := &imapSession{f: f, ctl: ctl, stop: stop, exists: make(chan struct{}, 1)}
	opts := &imapclient.Options{TLSConfig: f.tls, UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				s.signal()
			}
		},
	}}
	// Every byte from the server passes a guard, above TLS.
	s.c, s.guard, err = imapconn.Open(ctx, conn, f.src.TLS == TLSStart, f.tls, f.src.addr(), f.src.Timeout, f.opts.MaxSize+imapLiteralSlack, opts)
	if err != nil {
		stop()
		conn.Close()
		return nil, fmt.Errorf("imap %s: %w", f.src.addr(), err)
	}
	s.guard.OnWrite(ctl.begin)
	pw, err := f.src.Password(ctx)
	if err == nil {
		err = s.c.Login(f.src.User, pw).Wait()
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("imap login to %s: %w", f.src.addr(), err)
	}
	return s, nil
}

func (s *imapSession) signal() {
	select {
	case s.exists <- struct{}{}:
	default:
	}
}

// drain forgets EXISTS seen so far: the search that follows covers them.
func (s *imapSession) drain() {
	select {
	case <-s.exists:
	default:
	}
}

func (s *imapSession) close() {
	s.c.Close()
	s.stop()
}

// closed reports whether the connection is gone.
func (s *imapSession) closed() bool {
	select {
	case <-s.c.Closed():
		return true
	default:
		return false
	}
}

// selectFolder selects folder, read-only when messages are kept.
func (s *imapSession) selectFolder(folder string) error {
	before := s.guard.UIDValidityCodes()
	data, err := s.c.Select(folder, &imap.SelectOptions{ReadOnly: s.f.src.Keep}).Wait()
	if err != nil {
		return fmt.Errorf("imap SELECT %q: %w", folder, err)
	}
	// RFC 9051 §7.1: UIDVALIDITY is required; without it UIDs mean nothing.
	if data.UIDValidity == 0 {
		return fmt.Errorf("imap SELECT %q: server sent no UIDVALIDITY", folder)
	}
	s.folder, s.uv, s.fresh = folder, data.UIDValidity, true
	// The SELECT response carries one UIDVALIDITY code (RFC 9051 §7.1);
	// a second one, even in the same read, counts as a change.
	s.uvSeen = before + 1
	return nil
}

// errUIDValidityMoved ends a pass whose folder got a new UIDVALIDITY
// after SELECT: from then on its UIDs may name other messages (RFC 9051
// §2.3.1.1), so nothing more is fetched or deleted by them. The next
// pass selects again and sorts it out (state.go's legacy fingerprints).
var errUIDValidityMoved = errors.New("imap: the server announced a new UIDVALIDITY during the pass; nothing more is fetched or deleted by the old UIDs")

// uidsStill reports whether the UIDs of the selected folder still mean
// what they meant at SELECT: no UIDVALIDITY response code came since.
func (s *imapSession) uidsStill() error {
	if s.guard.UIDValidityCodes() != s.uvSeen {
		return errUIDValidityMoved
	}
	return nil
}

// imapOnce makes one pass over every folder on one connection.
func (f *Fetcher) imapOnce(ctx context.Context) (Stats, error) {
	var st Stats
	s, err := f.imapConnect(ctx)
	if err != nil {
		return st, err
	}
	defer s.close()
	var errs []error
	for _, folder := range f.src.Folders {
		err := s.selectFolder(folder)
		if err == nil {
			var one Stats
			one, err = s.pass(ctx)
			st.add(one)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("folder %q: %w", folder, err))
		}
		if s.closed() || ctx.Err() != nil {
			break
		}
	}
	if !s.closed() {
		_ = s.c.Logout().Wait()
	}
	return st, errors.Join(errs...)
}

// watch keeps one connection on folder: a pass, then IDLE until the
// server announces a message (or the interval passes), and again.
func (f *Fetcher) watch(ctx context.Context, folder string, healthy func()) error {
	s, err := f.imapConnect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.selectFolder(folder); err != nil {
		return err
	}
	canIdle := s.c.Caps().Has(imap.CapIdle)
	if !canIdle {
		f.log.Warn("fetch: server has no IDLE, polling", "folder", folder)
	}
	for {
		st, err := s.pass(ctx)
		f.logPass(folder, st, err)
		if err != nil {
			return err
		}
		healthy()
		wait := min(f.src.Interval, maxIdleWait)
		if canIdle {
			err = s.idle(ctx, wait)
		} else {
			s.ctl.setIdle(true)
			err = sleep(ctx, wait)
			s.ctl.setIdle(false)
			if err == nil {
				err = s.c.Noop().Wait()
			}
		}
		if err != nil {
			return err
		}
	}
}

// idle runs IDLE (RFC 2177) until the server sends EXISTS, wait passes or
// ctx ends. Reads have no deadline meanwhile.
func (s *imapSession) idle(ctx context.Context, wait time.Duration) error {
	s.ctl.setIdle(true)
	cmd, err := s.c.Idle()
	if err != nil {
		s.ctl.setIdle(false)
		return fmt.Errorf("imap IDLE: %w", err)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.exists:
	case <-t.C:
	case <-ctx.Done():
	case <-s.c.Closed():
	}
	s.ctl.setIdle(false)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("imap IDLE: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("imap IDLE: %w", err)
	}
	return nil
}

// pass delivers every new message of the selected folder and, unless
// keep, deletes what is delivered.
func (s *imapSession) pass(ctx context.Context) (Stats, error) {
	var st Stats
	f, folder := s.f, s.folder
	uv, last, known := f.state.Box(folder)
	if !known || uv != s.uv {
		if known {
			f.log.Warn("fetch: UIDVALIDITY changed: fetching the folder again, without messages already delivered",
				"folder", folder, "old", uv, "new", s.uv)
		}
		if err := f.state.SetBox(folder, s.uv); err != nil {
			return st, err
		}
		last = 0
	}
	s.drain()
	var del []uint32
	if s.fresh {
		leftovers, err := s.reconcile()
		if err != nil {
			return st, err
		}
		s.fresh, del = false, leftovers
	}
	var uids []uint32
	var err error
	if last < math.MaxUint32 { // no UID comes after the last one (last+1 would be "*")
		uids, err = s.search(last + 1)
	}
	for len(uids) > 0 && err == nil {
		chunk := uids[:min(len(uids), imapListChunk)]
		uids = uids[len(chunk):]
		var ls []listed
		if ls, err = s.list(chunk); err != nil {
			break
		}
		// In UID order, up to the first failure: a message recorded
		// (delivered, skipped or gone) moves the folder's high-water
		// mark past every lower UID, which must all be done by then.
		for _, l := range ls {
			var o outcome
			if l.unlisted {
				o, err = s.unlisted(l.uid)
			} else {
				o, err = s.message(ctx, l)
			}
			if err != nil {
				break
			}
			st.count(o)
			if (o == delivered || o == duplicate) && !f.src.Keep {
				del = append(del, l.uid)
			}
			if len(del) >= imapDeleteBatch {
				n, derr := s.delete(del)
				st.Deleted, del = st.Deleted+n, nil
				if derr != nil {
					return st, derr
				}
			}
		}
	}
	if err != nil && s.closed() {
		return st, err
	}
	n, derr := s.delete(del)
	st.Deleted += n
	if err == nil && derr == nil {
		derr = s.endLegacy()
	}
	return st, errors.Join(err, derr)
}

// reconcile runs once per SELECT: it forgets messages no longer on the
// server and pending deliveries of messages expunged meanwhile, and
// returns (unless keep) the delivered messages still there to delete.
func (s *imapSession) reconcile() ([]uint32, error) {
	f := s.f
	done, skip := f.state.Handled(s.folder)
	pend := f.state.Pendings(imapPrefix(f.src.Name, s.folder))
	if len(done)+len(skip)+len(pend) == 0 {
		return nil, nil
	}
	data, err := s.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("imap UID SEARCH ALL: %w", err)
	}
	all, err := imapconn.SearchUIDs(data.All, 1, imapconn.MaxSearchUIDs)
	if err != nil {
		return nil, err
	}
	present := map[uint32]bool{}
	for _, u := range all {
		present[u] = true
	}
	var gone, left []uint32
	for _, u := range done {
		if !present[u] {
			gone = append(gone, u)
		} else if !f.src.Keep {
			left = append(left, u)
		}
	}
	for _, u := range skip {
		if !present[u] {
			gone = append(gone, u)
		}
	}
	if err := f.state.GoneUIDs(s.folder, gone); err != nil {
		return nil, err
	}
	current := imapPrefix(f.src.Name, s.folder) + strconv.FormatUint(uint64(s.uv), 10) + "/"
	for _, p := range pend {
		uid, err := strconv.ParseUint(strings.TrimPrefix(p.ID, current), 10, 32)
		if strings.HasPrefix(p.ID, current) && err == nil && !present[uint32(uid)] {
			if err := f.state.Clear(p.ID); err != nil {
				return nil, err
			}
		}
	}
	return left, nil
}

// endLegacy ends a refetch after a UIDVALIDITY change once a pass went
// through every message: pending deliveries of the old UIDVALIDITY that
// matched no message will not be resumed.
func (s *imapSession) endLegacy() error {
	f := s.f
	if _, any := f.state.Legacy(s.folder, ""); !any {
		return nil
	}
	current := imapPrefix(f.src.Name, s.folder) + strconv.FormatUint(uint64(s.uv), 10) + "/"
	for _, p := range f.state.Pendings(imapPrefix(f.src.Name, s.folder)) {
		if !strings.HasPrefix(p.ID, current) {
			if err := f.state.Clear(p.ID); err != nil {
				return err
			}
		}
	}
	return f.state.EndLegacy(s.folder)
}

// search returns the UIDs from from on, ascending.
func (s *imapSession) search(from uint32) ([]uint32, error) {
	crit := &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(from), Stop: 0}}}}
	data, err := s.c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("imap UID SEARCH: %w", err)
	}
	return imapconn.SearchUIDs(data.All, from, imapconn.MaxSearchUIDs)
}

// listed is one message as listed before fetching it.
type listed struct {
	uid      uint32
	size     int64
	fp       string
	unlisted bool // UID SEARCH returned it, the listing did not
}

// list returns each message's size and fingerprint, in UID order, with
// the UIDs the server did not list marked unlisted.
func (s *imapSession) list(uids []uint32) ([]listed, error) {
	set := imap.UIDSet{}
	want := map[uint32]bool{}
	for _, u := range uids {
		set.AddNum(imap.UID(u))
		want[u] = true
	}
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: fingerprintFields, Peek: true}
	cmd := s.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{section}})
	var out []listed
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		var l listed
		var hdr []byte
		for item := m.Next(); item != nil; item = m.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				l.uid = uint32(it.UID)
			case imapclient.FetchItemDataRFC822Size:
				l.size = it.Size
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					hdr, _ = io.ReadAll(io.LimitReader(it.Literal, maxListedHeader))
				}
			}
		}
		if want[l.uid] {
			l.fp = fingerprint(l.size, header(hdr))
			out = append(out, l)
			delete(want, l.uid)
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("imap UID FETCH (list): %w", err)
	}
	for _, u := range uids {
		if want[u] {
			out = append(out, listed{uid: u, unlisted: true})
		}
	}
	slices.SortFunc(out, func(a, b listed) int { return int(int64(a.uid) - int64(b.uid)) })
	return out, nil
}

// unlisted handles a UID that UID SEARCH returned and the listing left
// out. Gone meanwhile (expunged by another client), it is recorded as
// such. Still there, the pass fails and is tried again, like an empty
// body, and after maxUnreadPasses the message is left on the server:
// taking it for gone would let the messages after it move the folder's
// high-water mark past it, and no later pass would ever look at it.
func (s *imapSession) unlisted(uid uint32) (outcome, error) {
	f := s.f
	still, err := s.uidExists(uid)
	switch {
	case err != nil:
		return 0, err
	case !still:
		return vanished, f.state.SkipUID(s.folder, uid, "")
	}
	id := imapID(f.src.Name, s.folder, s.uv, uid)
	err = fmt.Errorf("imap UID FETCH %d: not listed, though the server still has it", uid)
	if f.unreadable(id) {
		f.refused(id, err)
		return skipped, f.state.SkipUID(s.folder, uid, id) // id ends its count
	}
	return 0, err
}

// message fetches and delivers one listed message.
func (s *imapSession) message(ctx context.Context, l listed) (outcome, error) {
	f := s.f
	id := imapID(f.src.Name, s.folder, s.uv, l.uid)
	if seen, _ := f.state.Legacy(s.folder, l.fp); seen {
		f.log.Info("fetch: delivered before the UIDVALIDITY change, not again", "folder", s.folder, "uid", l.uid)
		return duplicate, f.state.DoneUID(s.folder, l.uid, l.fp, "")
	}
	if l.size > f.opts.MaxSize {
		f.refused(id, fmt.Errorf("%d octets, more than the maximum message size %d", l.size, f.opts.MaxSize))
		return skipped, f.state.SkipUID(s.folder, l.uid, "")
	}
	msg, err := s.body(l.uid)
	if err == nil {
		err = s.uidsStill() // the body may be another message's now
	}
	switch {
	case errors.Is(err, errTooBig):
		f.refused(id, err)
		return skipped, f.state.SkipUID(s.folder, l.uid, "")
	case err != nil:
		return 0, err
	case msg == nil: // expunged by someone else meanwhile, if it is gone
		if still, err := s.uidExists(l.uid); err != nil || still {
			// A server that sent no body for a message it still lists
			// (a glitch, or NIL): fail the pass and try again, rather
			// than record the message as gone and leave it there unread.
			return 0, errors.Join(err, fmt.Errorf("imap UID FETCH %d: no body for a message the server still lists", l.uid))
		}
		return vanished, f.state.SkipUID(s.folder, l.uid, "")
	case len(msg) == 0 && l.size > 0:
		// BODY[] {0} for a message listed with a size: a server that lost
		// or could not read the file for now. Delivering the empty
		// literal would record the message as fetched (and delete the
		// real one); fail the pass and try again, and after a few passes
		// leave it on the server, so that later mail is not held back.
		err := fmt.Errorf("imap UID FETCH %d: an empty body for a message listed with %d octets", l.uid, l.size)
		if f.unreadable(id) {
			f.refused(id, err)
			return skipped, f.state.SkipUID(s.folder, l.uid, id) // id ends its count
		}
		return 0, err
	}
	h := header(msg)
	if looped(h, f.src.Name) {
		f.refused(id, errors.New("it already went through this source (a loop)"))
		return skipped, f.state.SkipUID(s.folder, l.uid, "")
	}
	var prior *Pending
	current := imapPrefix(f.src.Name, s.folder) + strconv.FormatUint(uint64(s.uv), 10) + "/"
	if p, ok := f.state.PendingLike(imapPrefix(f.src.Name, s.folder), l.fp); ok && !strings.HasPrefix(p.ID, current) {
		prior = &p // the same message, begun under the old UIDVALIDITY
	}
	id, err = f.deliver(ctx, id, l.fp, msg, h, prior)
	if errors.Is(err, ErrRefused) {
		f.refused(id, err)
		return skipped, f.state.SkipUID(s.folder, l.uid, id)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errDeliver, err)
	}
	return delivered, f.state.DoneUID(s.folder, l.uid, l.fp, id)
}

// uidExists asks the server whether it still has the message uid.
func (s *imapSession) uidExists(uid uint32) (bool, error) {
	data, err := s.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(imap.UID(uid))}}, nil).Wait()
	if err != nil {
		return false, fmt.Errorf("imap UID SEARCH: %w", err)
	}
	uids, err := imapconn.SearchUIDs(data.All, uid, 1)
	return len(uids) > 0 && uids[0] == uid, err
}

// body fetches one whole message without setting \Seen; nil when the
// message no longer exists.
func (s *imapSession) body(uid uint32) ([]byte, error) {
	cmd := s.c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	var msg []byte
	var tooBig bool
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		// Only BODY[] matters: unsolicited FETCH responses (flag changes)
		// carry none. The UID may come before or after it.
		var got uint32
		var body []byte
		for item := m.Next(); item != nil; item = m.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				got = uint32(it.UID)
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil || body != nil {
					continue
				}
				if it.Literal.Size() > s.f.opts.MaxSize {
					tooBig = true // the library discards the literal
					continue
				}
				body = make([]byte, it.Literal.Size())
				if _, err := io.ReadFull(it.Literal, body); err != nil {
					cmd.Close()
					return nil, fmt.Errorf("imap UID FETCH %d: %w", uid, err)
				}
			}
		}
		if got == uid && body != nil {
			msg = body
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("imap UID FETCH %d: %w", uid, err)
	}
	if tooBig {
		return nil, errTooBig
	}
	return msg, nil
}

// delete marks delivered messages \Deleted and expunges them: only those
// with UIDPLUS (RFC 4315 §2.1); without it, EXPUNGE also removes what
// others marked \Deleted. It returns how many were deleted.
func (s *imapSession) delete(uids []uint32) (int, error) {
	if len(uids) == 0 {
		return 0, nil
	}
	if err := s.uidsStill(); err != nil {
		return 0, err
	}
	set := imap.UIDSet{}
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	flags := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := s.c.Store(set, flags, nil).Close(); err != nil {
		return 0, fmt.Errorf("imap UID STORE \\Deleted: %w", err)
	}
	if err := s.uidsStill(); err != nil {
		return 0, err // flagged, but nothing expunged
	}
	var err error
	if s.c.Caps().Has(imap.CapUIDPlus) {
		err = s.c.UIDExpunge(set).Close()
	} else {
		err = s.c.Expunge().Close()
	}
	if err != nil {
		return 0, fmt.Errorf("imap EXPUNGE: %w", err)
	}
	return len(uids), s.f.state.GoneUIDs(s.folder, uids)
}
