package daemon

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"time"

	"posthorn/internal/imap"
	"posthorn/internal/sasl"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

// imapBackend adapts the users service and the store to imap.Backend.
type imapBackend struct {
	users *users.Service
	store store.Store
}

// IMAPBackend returns the IMAP server's backend over us and st.
func IMAPBackend(us *users.Service, st store.Store) imap.Backend {
	return &imapBackend{users: us, store: st}
}

var (
	_ imap.Backend = (*imapBackend)(nil)
	_ imap.User    = (*imapUser)(nil)
)

func (b *imapBackend) Login(ctx context.Context, ip netip.Addr, user, pw string) (imap.User, error) {
	a, err := b.users.Authenticate(ctx, users.Login{IP: ip, Protocol: "imap", User: user, Password: pw})
	if err != nil {
		return nil, authErr(err, imap.ErrBlocked, imap.ErrAuth)
	}
	return &imapUser{name: a.Address, st: b.store}, nil
}

func (b *imapBackend) SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error) {
	srv, err := b.users.SASL(ctx, mech, "imap", ip)
	if err != nil {
		return nil, err
	}
	return blockMap{srv, imap.ErrBlocked}, nil
}

func (b *imapBackend) Open(ctx context.Context, identity string) (imap.User, error) {
	if _, err := b.store.Account(ctx, identity); err != nil {
		return nil, imap.ErrAuth
	}
	return &imapUser{name: identity, st: b.store}, nil
}

// authErr maps users' login errors to a wire package's.
func authErr(err, blocked, failed error) error {
	switch {
	case errors.Is(err, users.ErrBlocked):
		return blocked
	case errors.Is(err, sasl.ErrAuthFailed), errors.Is(err, users.ErrNotFound):
		return failed
	}
	return err
}

// blockMap turns users.ErrBlocked from a SASL exchange into the wire
// package's error.
type blockMap struct {
	sasl.Server
	blocked error
}

func (b blockMap) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := b.Server.Next(resp)
	if errors.Is(err, users.ErrBlocked) {
		err = b.blocked
	}
	return ch, done, err
}

// imapUser is one account's mail for the IMAP server.
type imapUser struct {
	name string
	st   store.Store
}

func (u *imapUser) Name() string { return u.name }
func (u *imapUser) Close()       {}

// mapErr turns store errors into imap's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNoMailbox):
		return imap.ErrNoMailbox
	case errors.Is(err, store.ErrExists), errors.Is(err, users.ErrExists):
		return imap.ErrExists
	case errors.Is(err, store.ErrBadName):
		return imap.ErrBadName
	case errors.Is(err, store.ErrOverQuota), errors.Is(err, store.ErrFull):
		return imap.ErrOverQuota
	case errors.Is(err, users.ErrNotFound):
		return imap.ErrNoMessage
	}
	return err
}

func (u *imapUser) Mailboxes(ctx context.Context) ([]imap.MailboxInfo, error) {
	ms, err := u.st.Mailboxes(ctx, u.name)
	if err != nil {
		return nil, mapErr(err)
	}
	lone, err := u.st.LoneSubscriptions(ctx, u.name)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]imap.MailboxInfo, 0, len(ms)+len(lone))
	names := make(map[string]bool, len(ms))
	for _, m := range ms {
		out = append(out, imap.MailboxInfo{Name: m.Name, SpecialUse: m.SpecialUse, Subscribed: m.Subscribed})
		names[m.Name] = true
	}
	for _, name := range lone {
		if !names[name] { // deleted between the two queries: once, as the mailbox
			out = append(out, imap.MailboxInfo{Name: name, Subscribed: true, NonExistent: true})
		}
	}
	return out, nil
}

func (u *imapUser) Create(ctx context.Context, name, use string) error {
	return mapErr(u.st.CreateMailbox(ctx, u.name, name, use))
}

func (u *imapUser) Delete(ctx context.Context, name string) error {
	return mapErr(u.st.DeleteMailbox(ctx, u.name, name))
}

func (u *imapUser) Rename(ctx context.Context, from, to string) error {
	return mapErr(u.st.RenameMailbox(ctx, u.name, from, to))
}

func (u *imapUser) Subscribe(ctx context.Context, name string, on bool) error {
	return mapErr(u.st.Subscribe(ctx, u.name, name, on))
}

func (u *imapUser) Status(ctx context.Context, name string) (imap.Status, error) {
	m, err := u.st.MailboxStatus(ctx, u.name, name)
	return imap.Status{Messages: m.Messages, Unseen: m.Unseen, Deleted: m.Deleted, UIDNext: m.UIDNext,
		UIDValidity: m.UIDValidity, HighestModSeq: m.HighestModSeq, Size: m.Size}, mapErr(err)
}

func metas(ms []store.MessageMeta) []imap.Meta {
	out := make([]imap.Meta, len(ms))
	for i, m := range ms {
		out[i] = imap.Meta{UID: m.UID, ModSeq: m.ModSeq, Flags: m.Flags, InternalDate: m.InternalDate, Size: m.Size}
	}
	return out
}

// selectedCtx passes the IMAP session's selected mailbox identity on to
// the store (store.WithUIDValidity).
func selectedCtx(ctx context.Context, name string) context.Context {
	if v, ok := imap.SelectedUIDValidity(ctx, name); ok {
		return store.WithUIDValidity(ctx, name, v)
	}
	return ctx
}

func (u *imapUser) Snapshot(ctx context.Context, name string) (imap.Snapshot, error) {
	s, err := u.st.Snapshot(ctx, u.name, name)
	return imap.Snapshot{UIDValidity: s.UIDValidity, UIDNext: s.UIDNext, HighestModSeq: s.HighestModSeq, Messages: metas(s.Messages)}, mapErr(err)
}

func (u *imapUser) Changes(ctx context.Context, name string, since uint64) (imap.Changes, error) {
	c, err := u.st.Changes(selectedCtx(ctx, name), u.name, name, since)
	return imap.Changes{UIDNext: c.UIDNext, HighestModSeq: c.HighestModSeq, Updated: metas(c.Updated), Expunged: c.Expunged}, mapErr(err)
}

func (u *imapUser) Open(ctx context.Context, name string, uid uint32) (imap.Content, error) {
	c, err := u.st.Open(selectedCtx(ctx, name), u.name, name, uid)
	if err != nil {
		return nil, mapErr(err)
	}
	return content{c}, nil
}

type content struct{ c store.Content }

func (c content) Size() int64                    { return c.c.Size() }
func (c content) Reader() (io.ReadCloser, error) { return c.c.Reader() }

func (u *imapUser) Append(ctx context.Context, name string, flags []string, date time.Time, r io.Reader, size int64) (uint32, uint32, error) {
	v, uid, err := u.st.Append(ctx, u.name, name, flags, date, r, size)
	return v, uid, mapErr(err)
}

func (u *imapUser) SetFlags(ctx context.Context, name string, uids []uint32, op imap.FlagOp, flags []string, since uint64) ([]imap.Meta, []uint32, error) {
	sop := map[imap.FlagOp]store.FlagOp{imap.FlagsReplace: store.FlagsReplace, imap.FlagsAdd: store.FlagsAdd, imap.FlagsRemove: store.FlagsRemove}[op]
	changed, failed, err := u.st.SetFlags(selectedCtx(ctx, name), u.name, name, uids, sop, flags, since)
	return metas(changed), failed, mapErr(err)
}

func (u *imapUser) Expunge(ctx context.Context, name string, uids []uint32) ([]uint32, error) {
	done, err := u.st.Expunge(selectedCtx(ctx, name), u.name, name, uids)
	return done, mapErr(err)
}

func (u *imapUser) Copy(ctx context.Context, from, to string, uids []uint32, move bool) (uint32, []uint32, []uint32, error) {
	v, src, dst, err := u.st.Copy(selectedCtx(ctx, from), u.name, from, to, uids, move)
	return v, src, dst, mapErr(err)
}

func (u *imapUser) Quota(ctx context.Context) (int64, int64, error) {
	used, limit, err := u.st.Quota(ctx, u.name)
	return used, limit, mapErr(err)
}

func (u *imapUser) Watch(name string) (<-chan struct{}, func()) { return u.st.Watch(u.name, name) }
