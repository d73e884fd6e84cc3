package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"sync"

	"posthorn/internal/pop3"
	"posthorn/internal/sasl"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

// pop3Backend adapts the users service and the store to pop3.Backend.
// POP3 sees an account's INBOX.
type pop3Backend struct {
	users *users.Service
	store store.Store

	mu     sync.Mutex
	locked map[string]bool // accounts with an open POP3 session
}

var (
	_ pop3.Backend  = (*pop3Backend)(nil)
	_ pop3.Maildrop = (*maildrop)(nil)
)

// POP3Backend returns the POP3 server's backend over us and st.
func POP3Backend(us *users.Service, st store.Store) pop3.Backend {
	return &pop3Backend{users: us, store: st, locked: map[string]bool{}}
}

func (b *pop3Backend) Login(ctx context.Context, ip netip.Addr, user, pw string) (string, error) {
	a, err := b.users.Authenticate(ctx, users.Login{IP: ip, Protocol: "pop3", User: user, Password: pw})
	if err != nil {
		return "", authErr(err, pop3.ErrBlocked, pop3.ErrAuth)
	}
	return a.Address, nil
}

func (b *pop3Backend) SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error) {
	srv, err := b.users.SASL(ctx, mech, "pop3", ip)
	if err != nil {
		return nil, err
	}
	return blockMap{srv, pop3.ErrBlocked}, nil
}

// Open locks the maildrop (RFC 1939 §3: one session at a time) and
// snapshots INBOX. UIDLs are UIDVALIDITY and UID, stable across sessions.
func (b *pop3Backend) Open(ctx context.Context, identity string) (pop3.Maildrop, error) {
	b.mu.Lock()
	if b.locked[identity] {
		b.mu.Unlock()
		return nil, pop3.ErrLocked
	}
	b.locked[identity] = true
	b.mu.Unlock()
	snap, err := b.store.Snapshot(ctx, identity, "INBOX")
	if err != nil {
		b.unlock(identity)
		return nil, err
	}
	m := &maildrop{b: b, account: identity}
	for _, msg := range snap.Messages {
		m.uids = append(m.uids, msg.UID)
		m.msgs = append(m.msgs, pop3.Message{UID: fmt.Sprintf("%08x%08x", snap.UIDValidity, msg.UID), Size: msg.Size})
	}
	return m, nil
}

func (b *pop3Backend) unlock(identity string) {
	b.mu.Lock()
	delete(b.locked, identity)
	b.mu.Unlock()
}

type maildrop struct {
	b       *pop3Backend
	account string
	uids    []uint32
	msgs    []pop3.Message
	once    sync.Once
}

func (m *maildrop) Messages() []pop3.Message { return m.msgs }

func (m *maildrop) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	c, err := m.b.store.Open(ctx, m.account, "INBOX", m.uids[i])
	if errors.Is(err, users.ErrNotFound) {
		return nil, pop3.ErrGone
	}
	if err != nil {
		return nil, err
	}
	r, err := c.Reader()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, pop3.ErrGone
	}
	return r, err
}

// Commit expunges the deleted messages; IMAP sessions see them vanish.
func (m *maildrop) Commit(ctx context.Context, deleted []int) error {
	uids := make([]uint32, len(deleted))
	for k, i := range deleted {
		uids[k] = m.uids[i]
	}
	_, err := m.b.store.Expunge(ctx, m.account, "INBOX", uids)
	return err
}

func (m *maildrop) Close() { m.once.Do(func() { m.b.unlock(m.account) }) }
