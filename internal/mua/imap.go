package mua

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"posthorn/internal/imapconn"
	"posthorn/internal/sasl"
)

// Session is a logged-in IMAP connection (RFC 9051, RFC 3501 servers
// too). Message ids are UIDs of the folder they are in. A Session is
// used by one goroutine.
type Session struct {
	c        *imapclient.Client
	p        *Profile
	selected string
	readOnly bool
	// exists is signalled (without blocking) on every EXISTS the server
	// sends on its own: Watch waits on it.
	exists chan struct{}
}

// Summary is one line of a listing.
type Summary struct {
	UID        uint32    `json:"uid"`
	Folder     string    `json:"folder"`
	Date       time.Time `json:"date"`
	From       []Address `json:"from"`
	To         []Address `json:"to,omitempty"`
	Subject    string    `json:"subject"`
	Flags      []string  `json:"flags"`
	Size       int64     `json:"size"`
	MessageID  string    `json:"message_id,omitempty"`
	Attachment bool      `json:"attachment"`
}

// Seen reports the \Seen flag.
func (s Summary) Seen() bool { return slices.Contains(s.Flags, string(imap.FlagSeen)) }

// Folder is one mailbox of the account.
type Folder struct {
	Name       string   `json:"name"`
	SpecialUse string   `json:"special_use,omitempty"` // \Sent, \Trash... (RFC 6154)
	Messages   *uint32  `json:"messages,omitempty"`
	Unseen     *uint32  `json:"unseen,omitempty"`
	Attrs      []string `json:"attributes,omitempty"`
}

// Dial connects to the profile's IMAP server with TLS (implicit or
// STARTTLS, certificate verified as the profile says) and logs in:
// AUTHENTICATE SCRAM-SHA-256 when offered, else PLAIN, else LOGIN. debug,
// when not nil, receives the whole conversation (passwords included).
func Dial(ctx context.Context, p *Profile, debug io.Writer) (*Session, error) {
	if err := p.NeedIMAP(); err != nil {
		return nil, err
	}
	tc, err := p.tlsConfig(p.IMAP)
	if err != nil {
		return nil, err
	}
	s := &Session{p: p, exists: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		WordDecoder: newWordDecoder(),
		DebugWriter: debug,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case s.exists <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	if s.c, err = dialIMAP(ctx, p, tc, opts); err != nil {
		return nil, fmt.Errorf("imap %s: %w", p.IMAP.Addr(), err)
	}
	if err := s.login(ctx); err != nil {
		s.c.Close()
		return nil, fmt.Errorf("imap %s: %w", p.IMAP.Addr(), err)
	}
	return s, nil
}

// maxResponse bounds what one response from the server may make the
// client hold (imapconn.Guard): a hostile server announcing a literal of
// 4 GB grew posthorn mail to 3.7 GB. It is far above any message a mail
// client would show.
const maxResponse = 256 << 20

// dialIMAP connects with implicit TLS or STARTTLS and starts the client,
// every octet from the server passing a guard above TLS.
func dialIMAP(ctx context.Context, p *Profile, tc *tls.Config, opts *imapclient.Options) (*imapclient.Client, error) {
	addr := p.IMAP.Addr()
	d := &net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if p.IMAP.TLS == TLSImplicit {
		t := tls.Client(raw, tc)
		hctx, cancel := context.WithTimeout(ctx, dialTimeout)
		err = t.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			return nil, err
		}
		conn = t
	}
	c, _, err := imapconn.Open(ctx, conn, p.IMAP.TLS != TLSImplicit, tc, addr, dialTimeout, maxResponse, opts)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

func (s *Session) login(ctx context.Context) error {
	pw, err := s.p.password(ctx)
	if err != nil {
		return err
	}
	if err := s.c.WaitGreeting(); err != nil {
		return err
	}
	mechs := s.c.Caps().AuthMechanisms()
	has := func(m string) bool {
		return slices.ContainsFunc(mechs, func(x string) bool { return strings.EqualFold(x, m) })
	}
	switch {
	case has(sasl.ScramSHA256):
		sc, err := sasl.NewSCRAMClient(s.p.User, pw)
		if err != nil {
			return err
		}
		if err := s.c.Authenticate(scramIMAP{sc}); err != nil {
			return fmt.Errorf("AUTHENTICATE %s: %w", sasl.ScramSHA256, err)
		}
		if !sc.Valid() {
			return errors.New("AUTHENTICATE SCRAM-SHA-256: the server did not prove it knows the password")
		}
	case has(sasl.Plain):
		if err := s.c.Authenticate(plainIMAP{s.p.User, pw}); err != nil {
			return fmt.Errorf("AUTHENTICATE PLAIN: %w", err)
		}
	case s.c.Caps().Has(imap.CapLoginDisabled):
		return errors.New("the server allows no login we know")
	default:
		if err := s.c.Login(s.p.User, pw).Wait(); err != nil {
			return fmt.Errorf("LOGIN: %w", err)
		}
	}
	return nil
}

// scramIMAP and plainIMAP implement go-sasl's Client interface, which
// imapclient.Authenticate takes.
type scramIMAP struct{ c *sasl.SCRAMClient }

func (m scramIMAP) Start() (string, []byte, error) {
	ir, err := m.c.Step(nil)
	return sasl.ScramSHA256, ir, err
}
func (m scramIMAP) Next(ch []byte) ([]byte, error) { return m.c.Step(ch) }

type plainIMAP struct{ user, pw string }

func (m plainIMAP) Start() (string, []byte, error) {
	return sasl.Plain, sasl.PlainResponse("", m.user, m.pw), nil
}
func (m plainIMAP) Next([]byte) ([]byte, error) { return nil, errors.New("unexpected PLAIN challenge") }

// Close logs out and closes the connection.
func (s *Session) Close() error {
	_ = s.c.Logout().Wait()
	return s.c.Close()
}

// selectFolder selects (or, read-only, examines) folder unless it is
// already. A read-only request is served by a read-write selection.
func (s *Session) selectFolder(folder string, readOnly bool) (*imap.SelectData, error) {
	if s.selected == folder && (!s.readOnly || readOnly) {
		return nil, nil
	}
	data, err := s.c.Select(folder, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
	if err != nil {
		s.selected = ""
		return nil, fmt.Errorf("select %s: %w", folder, err)
	}
	s.selected, s.readOnly = folder, readOnly
	return data, nil
}

// Folders lists every mailbox with its special use and counts: one LIST
// with RETURN (SPECIAL-USE STATUS) where the server has LIST-EXTENDED and
// LIST-STATUS (RFC 5258, RFC 5819), else LIST and a STATUS each.
func (s *Session) Folders() ([]Folder, error) {
	caps := s.c.Caps()
	rev2 := caps.Has(imap.CapIMAP4rev2)
	opts := &imap.ListOptions{}
	if rev2 || caps.Has(imap.CapListExtended) && caps.Has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true
	}
	if rev2 || caps.Has(imap.CapListStatus) {
		opts.ReturnStatus = &imap.StatusOptions{NumMessages: true, NumUnseen: true}
	}
	list, err := s.c.List("", "*", opts).Collect()
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var out []Folder
	for _, l := range list {
		f := Folder{Name: l.Mailbox}
		noSelect := false
		for _, a := range l.Attrs {
			switch a {
			case imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts, imap.MailboxAttrFlagged,
				imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrImportant:
				f.SpecialUse = string(a)
			case imap.MailboxAttrNoSelect, imap.MailboxAttrNonExistent:
				noSelect = true
			}
			f.Attrs = append(f.Attrs, string(a))
		}
		st := l.Status
		if st == nil && !noSelect {
			st, _ = s.c.Status(l.Mailbox, &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
		}
		if st != nil {
			f.Messages, f.Unseen = st.NumMessages, st.NumUnseen
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Folder) int {
		if a.Name == "INBOX" || b.Name == "INBOX" {
			return boolCmp(b.Name == "INBOX", a.Name == "INBOX")
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// SpecialFolder finds the folder for a special use (RFC 6154): the name
// configured, else the folder with the attribute, else one called
// fallback (last hierarchy level, any case), else it creates fallback.
func (s *Session) SpecialFolder(attr imap.MailboxAttr, configured, fallback string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	folders, err := s.Folders()
	if err != nil {
		return "", err
	}
	for _, f := range folders {
		if f.SpecialUse == string(attr) {
			return f.Name, nil
		}
	}
	for _, f := range folders {
		last := f.Name[strings.LastIndexAny(f.Name, "./")+1:]
		if strings.EqualFold(last, fallback) && !slices.Contains(f.Attrs, string(imap.MailboxAttrNoSelect)) {
			return f.Name, nil
		}
	}
	if err := s.c.Create(fallback, nil).Wait(); err != nil {
		return "", fmt.Errorf("create %s: %w", fallback, err)
	}
	return fallback, nil
}

// searchUIDs reads a UID SEARCH answer without go-imap's AllUIDs, which a
// hostile server can make loop for ever or allocate gigabytes
// (imapconn.SearchUIDs). The UIDs come back ascending.
func searchUIDs(sd *imap.SearchData) ([]imap.UID, error) {
	u32, err := imapconn.SearchUIDs(sd.All, 1, imapconn.MaxSearchUIDs)
	if err != nil {
		return nil, err
	}
	uids := make([]imap.UID, len(u32))
	for i, u := range u32 {
		uids[i] = imap.UID(u)
	}
	return uids, nil
}

// summaryFetch is what a listing asks for.
var summaryFetch = &imap.FetchOptions{UID: true, Flags: true, Envelope: true, InternalDate: true,
	RFC822Size: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}

// List returns the messages of folder that match criteria (nil: all),
// the last limit of them (0: all), oldest first.
func (s *Session) List(folder string, criteria *imap.SearchCriteria, limit int) ([]Summary, error) {
	if _, err := s.selectFolder(folder, true); err != nil {
		return nil, err
	}
	if criteria == nil {
		criteria = &imap.SearchCriteria{}
	}
	sd, err := s.c.UIDSearch(criteria, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", folder, err)
	}
	uids, err := searchUIDs(sd)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", folder, err)
	}
	if limit > 0 && len(uids) > limit {
		uids = uids[len(uids)-limit:]
	}
	if len(uids) == 0 {
		return nil, nil
	}
	return s.summaries(folder, imap.UIDSetNum(uids...), 0)
}

// summaries fetches the listing data of uids; those below min are left
// out (a UID range "n:*" always matches the last message, RFC 9051 §6.4.8).
func (s *Session) summaries(folder string, uids imap.UIDSet, min imap.UID) ([]Summary, error) {
	msgs, err := s.c.Fetch(uids, summaryFetch).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", folder, err)
	}
	var out []Summary
	for _, m := range msgs {
		if m.UID < min || m.UID == 0 {
			continue
		}
		sum := Summary{UID: uint32(m.UID), Folder: folder, Date: m.InternalDate, Size: m.RFC822Size, Flags: flagStrings(m.Flags)}
		if e := m.Envelope; e != nil {
			if !e.Date.IsZero() {
				sum.Date = e.Date
			}
			sum.Subject, sum.From, sum.To = e.Subject, envAddrs(e.From), envAddrs(e.To)
			if e.MessageID != "" {
				sum.MessageID = "<" + e.MessageID + ">"
			}
		}
		if m.BodyStructure != nil {
			sum.Attachment = hasAttachment(m.BodyStructure)
		}
		out = append(out, sum)
	}
	slices.SortFunc(out, func(a, b Summary) int { return int(a.UID) - int(b.UID) })
	return out, nil
}

func flagStrings(fs []imap.Flag) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

func envAddrs(as []imap.Address) []Address {
	var out []Address
	for _, a := range as {
		if a.IsGroupStart() || a.IsGroupEnd() {
			continue
		}
		out = append(out, Address{Name: a.Name, Addr: a.Addr()})
	}
	return out
}

func hasAttachment(bs imap.BodyStructure) bool {
	found := false
	bs.Walk(func(_ []int, part imap.BodyStructure) bool {
		if sp, ok := part.(*imap.BodyStructureSinglePart); ok {
			d := sp.Disposition()
			if d != nil && strings.EqualFold(d.Value, "attachment") || sp.Filename() != "" {
				found = true
			}
		}
		return !found
	})
	return found
}

// Fetch reads one message whole. Unless peek, it is marked \Seen, as a
// reader who opened it would expect.
func (s *Session) Fetch(folder string, uid uint32, peek bool) (*Message, error) {
	if _, err := s.selectFolder(folder, peek); err != nil {
		return nil, err
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := s.c.Fetch(imap.UIDSetNum(imap.UID(uid)),
		&imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch %s UID %d: %w", folder, uid, err)
	}
	var buf *imapclient.FetchMessageBuffer
	for _, m := range msgs {
		if uint32(m.UID) == uid {
			buf = m
		}
	}
	if buf == nil {
		return nil, fmt.Errorf("no message with UID %d in %s", uid, folder)
	}
	m, err := ParseMessage(buf.FindBodySection(section))
	if err != nil {
		return nil, err
	}
	m.UID, m.Folder, m.Flags = uid, folder, flagStrings(buf.Flags)
	if m.Date.IsZero() {
		m.Date = buf.InternalDate
	}
	if !peek && !slices.Contains(m.Flags, string(imap.FlagSeen)) {
		if err := s.store(imap.UIDSetNum(imap.UID(uid)), imap.StoreFlagsAdd, imap.FlagSeen); err != nil {
			return nil, err
		}
		m.Flags = append(m.Flags, string(imap.FlagSeen))
	}
	return m, nil
}

func (s *Session) store(uids imap.UIDSet, op imap.StoreFlagsOp, flags ...imap.Flag) error {
	if err := s.c.Store(uids, &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		return fmt.Errorf("store %v: %w", flags, err)
	}
	return nil
}

// existing returns the UIDs of uids that are in the selected folder, or
// an error naming the folder when there is none.
func (s *Session) existing(folder string, uids imap.UIDSet) (imap.UIDSet, error) {
	sd, err := s.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{uids}}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", folder, err)
	}
	found, err := searchUIDs(sd)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", folder, err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no message with UID %s in %s", uids, folder)
	}
	return imap.UIDSetNum(found...), nil
}

// Move moves messages to dest (MOVE, RFC 6851; go-imap falls back to
// COPY, STORE \Deleted and EXPUNGE without it).
func (s *Session) Move(folder string, uids imap.UIDSet, dest string) error {
	if _, err := s.selectFolder(folder, false); err != nil {
		return err
	}
	have, err := s.existing(folder, uids)
	if err != nil {
		return err
	}
	if _, err := s.c.Move(have, dest).Wait(); err != nil {
		return fmt.Errorf("move to %s: %w", dest, err)
	}
	return nil
}

// Delete moves messages to the Trash folder or, with expunge (or when
// folder is the Trash), marks them \Deleted and expunges them: UID
// EXPUNGE (RFC 4315) where the server has it, so that only these go.
// It returns where they went ("" for expunged).
func (s *Session) Delete(folder string, uids imap.UIDSet, expunge bool) (string, error) {
	if !expunge {
		trash, err := s.SpecialFolder(imap.MailboxAttrTrash, s.p.TrashFolder, "Trash")
		if err != nil {
			return "", err
		}
		if trash != folder {
			return trash, s.Move(folder, uids, trash)
		}
	}
	if _, err := s.selectFolder(folder, false); err != nil {
		return "", err
	}
	have, err := s.existing(folder, uids)
	if err != nil {
		return "", err
	}
	if err := s.store(have, imap.StoreFlagsAdd, imap.FlagDeleted); err != nil {
		return "", err
	}
	var ex *imapclient.ExpungeCommand
	if s.c.Caps().Has(imap.CapUIDPlus) || s.c.Caps().Has(imap.CapIMAP4rev2) {
		ex = s.c.UIDExpunge(have)
	} else {
		ex = s.c.Expunge() // also removes others marked \Deleted: RFC 3501 has no better
	}
	if _, err := ex.Collect(); err != nil {
		return "", fmt.Errorf("expunge: %w", err)
	}
	return "", nil
}

// Flag sets or clears a flag on messages.
func (s *Session) Flag(folder string, uids imap.UIDSet, flag imap.Flag, set bool) error {
	if _, err := s.selectFolder(folder, false); err != nil {
		return err
	}
	have, err := s.existing(folder, uids)
	if err != nil {
		return err
	}
	op := imap.StoreFlagsAdd
	if !set {
		op = imap.StoreFlagsDel
	}
	return s.store(have, op, flag)
}

// Append stores raw in folder with flags (APPEND, RFC 9051 §6.3.12).
func (s *Session) Append(folder string, raw []byte, flags ...imap.Flag) error {
	cmd := s.c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: flags, Time: time.Now()})
	if _, err := cmd.Write(raw); err != nil {
		return fmt.Errorf("append to %s: %w", folder, err)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("append to %s: %w", folder, err)
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("append to %s: %w", folder, err)
	}
	return nil
}

// SaveSent appends a sent message to the Sent folder with \Seen and
// returns the folder's name.
func (s *Session) SaveSent(raw []byte) (string, error) {
	sent, err := s.SpecialFolder(imap.MailboxAttrSent, s.p.SentFolder, "Sent")
	if err != nil {
		return "", err
	}
	return sent, s.Append(sent, raw, imap.FlagSeen)
}

// ParseUIDs reads "7", "3,5" or "3:7" (and mixes: "1,4:6").
func ParseUIDs(s string) (imap.UIDSet, error) {
	var set imap.UIDSet
	bad := fmt.Errorf("%q is not a UID, a list (3,5) or a range (3:7)", s)
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := parseUID(lo)
		if err != nil {
			return nil, bad
		}
		if !isRange {
			set.AddNum(a)
			continue
		}
		b, err := parseUID(hi)
		if err != nil {
			return nil, bad
		}
		set.AddRange(min(a, b), max(a, b))
	}
	return set, nil
}

func parseUID(s string) (imap.UID, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, errors.New("bad UID")
	}
	return imap.UID(n), nil
}

// ParseUID reads a single message id.
func ParseUID(s string) (uint32, error) {
	n, err := parseUID(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a message id (a UID: 1, 2, ...)", s)
	}
	return uint32(n), nil
}

// ParseFlag accepts the system flags by name, with or without "\\", in
// any case, and keywords (RFC 9051 §2.3.2: an atom, without "\\").
func ParseFlag(s string) (imap.Flag, error) {
	name := strings.TrimPrefix(s, `\`)
	for _, f := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft} {
		if strings.EqualFold(name, strings.TrimPrefix(string(f), `\`)) {
			return f, nil
		}
	}
	atom := s != "" && !strings.ContainsAny(s, "(){ %*\"]\\")
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			atom = false
		}
	}
	if !atom {
		return "", fmt.Errorf("flag %q: want seen, answered, flagged, deleted, draft or a keyword such as $Junk", s)
	}
	return imap.Flag(s), nil
}
