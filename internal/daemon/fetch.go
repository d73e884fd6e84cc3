package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"posthorn/internal/config"
	"posthorn/internal/delivery"
	"posthorn/internal/fetch"
	"posthorn/internal/message"
	"posthorn/internal/queue"
	"posthorn/internal/store"
	"posthorn/internal/unixmail"
	"posthorn/internal/users"
)

// FetchStateDirName is the directory under data_dir with each fetch
// source's state.
const FetchStateDirName = "fetch"

var (
	_ fetch.Deliverer = (*FetchDeliverer)(nil)
	_ fetch.Resumer   = (*FetchDeliverer)(nil)
)

// FetchSource turns a [[fetch]] table into a fetch.Source.
func FetchSource(f config.Fetch) fetch.Source {
	src := fetch.Source{Name: f.Name, Account: f.Account, Protocol: f.Protocol, Host: f.Host, Port: f.Port,
		TLS: f.TLS, Insecure: f.Insecure, User: f.User, Folders: f.Folders, Keep: f.Keep, Interval: f.Interval.D(),
		Idle: f.Idle, Fingerprint: f.TLSFingerprint, CAFile: f.TLSCAFile, Timeout: f.Timeout.D()}
	if f.PasswordFile != "" {
		src.Password = fetch.PasswordFile(f.PasswordFile)
	} else {
		src.Password = fetch.PasswordCommand(f.PasswordCommand)
	}
	return src
}

// NewFetcher opens (and locks) the state of src and returns its fetcher.
func NewFetcher(cfg *config.Config, src fetch.Source, d fetch.Deliverer, log *slog.Logger) (*fetch.Fetcher, error) {
	return fetch.New(fetch.Options{Source: src, Deliverer: d, StateDir: filepath.Join(cfg.DataDir, FetchStateDirName),
		Hostname: cfg.Hostname, MaxSize: int64(cfg.SMTP.MaxMessageSize), Logger: log})
}

// NewFetchDeliverer returns the local delivery path of fetched mail. q
// takes copies for remote alias targets and Sieve side effects.
func NewFetchDeliverer(cfg *config.Config, st store.Store, us *users.Service, q delivery.Queue, log *slog.Logger) (*FetchDeliverer, error) {
	unix, err := NewUnix(cfg, log)
	if err != nil {
		return nil, err
	}
	return &FetchDeliverer{Store: st, Users: us, Unix: unix, Queue: q, MaxReceived: cfg.SMTP.MaxReceived, Log: log,
		Filter: &delivery.Filter{Sieve: st, Mail: st, Queue: q, Hostname: cfg.Hostname, Logger: log}}, nil
}

// FetchDeliverer delivers fetched mail as `posthorn deliver` does:
// through aliases and [unix] domains, each account's copy through its
// Sieve script into the store, copies for other domains into the queue.
type FetchDeliverer struct {
	Store       store.Store
	Users       *users.Service
	Unix        *unixmail.System // nil without [unix] domains
	Filter      *delivery.Filter
	Queue       delivery.Queue
	MaxReceived int
	Log         *slog.Logger
}

// Deliver implements fetch.Deliverer.
func (d *FetchDeliverer) Deliver(ctx context.Context, account, from string, msg []byte) error {
	return d.deliver(ctx, account, from, msg, "", time.Time{})
}

// Resume implements fetch.Resumer: accounts that hold a message with
// fetch id id, delivered since then, get no second copy. Forwarded copies
// and [unix] mailboxes cannot be checked and are delivered again.
func (d *FetchDeliverer) Resume(ctx context.Context, account, from string, msg []byte, id string, since time.Time) error {
	return d.deliver(ctx, account, from, msg, id, since)
}

func (d *FetchDeliverer) deliver(ctx context.Context, account, from string, msg []byte, id string, since time.Time) error {
	f := &message.Filter{W: io.Discard, MaxBytes: 1 << 20, MaxCount: 10000}
	_, err := f.Write(msg)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return fmt.Errorf("%w: %w", fetch.ErrRefused, err)
	}
	if f.Info.Received > d.MaxReceived {
		return fmt.Errorf("%w: %d Received fields: a mail loop?", fetch.ErrRefused, f.Info.Received)
	}
	local, domain := users.Split(account)
	if d.Unix.HasDomain(domain) {
		return d.deliverUnix(ctx, local, account, from, msg)
	}
	res, err := d.Users.Resolve(ctx, local, domain)
	switch {
	case errors.Is(err, users.ErrNoSuchUser), errors.Is(err, users.ErrNotLocal):
		// A configuration problem, not the message's: keep it remote.
		return fmt.Errorf("%s is not a local address here", account)
	case err != nil:
		return err
	}
	for _, acct := range res.Accounts {
		if id != "" {
			held, err := d.holds(ctx, acct, id, since)
			if err != nil {
				return err
			}
			if held {
				d.Log.Info("fetch: copy was stored before the interruption", "account", acct, "id", id)
				continue
			}
		}
		if err := d.deliverCopy(ctx, account, acct, from, msg); err != nil {
			return err
		}
	}
	return d.forward(ctx, from, res.Remote, msg)
}

// deliverCopy stores one account's copy through its Sieve script.
func (d *FetchDeliverer) deliverCopy(ctx context.Context, rcpt, acct, from string, msg []byte) error {
	hdr := fmt.Sprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", from, acct)
	dl := store.Delivery{Account: acct, Mailbox: "INBOX", Date: time.Now(), Header: []byte(hdr),
		Body: bytes.NewReader(msg), BodySize: int64(len(msg))}
	ds, _ := d.Filter.Apply(ctx, delivery.Local{Delivery: dl, Rcpt: rcpt, From: from})
	for _, err := range d.Store.Deliver(ctx, ds) {
		if err != nil {
			return err
		}
	}
	return nil
}

// forward queues a copy for alias targets in other domains.
func (d *FetchDeliverer) forward(ctx context.Context, from string, to []string, msg []byte) error {
	if len(to) == 0 {
		return nil
	}
	m := store.QueuedMessage{ID: queue.NewID(), From: from, Created: time.Now(), Size: int64(len(msg))}
	for _, t := range to {
		m.Rcpts = append(m.Rcpts, store.QueuedRcpt{Addr: t})
	}
	_, err := d.Queue.Enqueue(ctx, m, bytes.NewReader(msg))
	return err
}

// deliverUnix delivers to a host account of a [unix] domain.
func (d *FetchDeliverer) deliverUnix(ctx context.Context, local, to, from string, msg []byte) error {
	targets, err := d.Unix.Resolve(local)
	if err != nil {
		return fmt.Errorf("%s: %w", to, err)
	}
	var remote []string
	hdr := fmt.Sprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", from, to)
	for _, t := range targets {
		if t.Kind == unixmail.Address {
			remote = append(remote, t.Addr)
			continue
		}
		if err := d.Unix.Deliver(ctx, t, from, io.MultiReader(strings.NewReader(hdr), bytes.NewReader(msg))); err != nil {
			var p unixmail.Permanent
			if errors.As(err, &p) {
				return fmt.Errorf("%w: %s: %w", fetch.ErrRefused, t, err)
			}
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	return d.forward(ctx, from, remote, msg)
}

// resumeMargin widens the window searched for an interrupted delivery,
// against clock steps between the pending record and the delivery.
const resumeMargin = 10 * time.Minute

// holds reports whether a mailbox of acct has a message delivered since
// (less the margin) whose fetch id is id. It syncs each index with its
// Maildir first: a crash may have left a file renamed into place but not
// indexed.
func (d *FetchDeliverer) holds(ctx context.Context, acct, id string, since time.Time) (bool, error) {
	boxes, err := d.Store.Mailboxes(ctx, acct)
	if err != nil {
		return false, err
	}
	from := since.Add(-resumeMargin)
	for _, b := range boxes {
		if err := d.Store.Sync(ctx, acct, b.Name); err != nil {
			return false, err
		}
		msgs, err := d.Store.Messages(ctx, acct, b.Name)
		if err != nil {
			return false, err
		}
		for _, m := range msgs {
			if m.InternalDate.Before(from) {
				continue
			}
			got, err := d.fetchID(ctx, acct, b.Name, m.UID)
			if err != nil {
				return false, err
			}
			if got == id {
				return true, nil
			}
		}
	}
	return false, nil
}

// fetchID reads the fetch id of one stored message from its header.
func (d *FetchDeliverer) fetchID(ctx context.Context, acct, mailbox string, uid uint32) (string, error) {
	c, err := d.Store.Open(ctx, acct, mailbox, uid)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil // expunged meanwhile
	}
	if err != nil {
		return "", err
	}
	r, err := c.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	head, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return "", err
	}
	return fetch.IDOf(head), nil
}

// startFetch runs every [[fetch]] source until the daemon stops.
func (d *Daemon) startFetch() {
	if len(d.cfg.Fetch) == 0 {
		return
	}
	log := d.log.With("service", "fetch")
	fd, err := NewFetchDeliverer(d.cfg, d.store, d.users, d.queue, log)
	if err != nil {
		log.Error("fetch: not started", "err", err)
		return
	}
	for _, fc := range d.cfg.Fetch {
		src := FetchSource(fc)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.runFetch(src, fd, log)
		}()
	}
}

// runFetch runs one source. Its state may be locked by a `posthorn fetch`
// running meanwhile: then it tries again later.
func (d *Daemon) runFetch(src fetch.Source, fd *FetchDeliverer, log *slog.Logger) {
	wait := 5 * time.Second
	for d.ctx.Err() == nil {
		f, err := NewFetcher(d.cfg, src, fd, log)
		if err == nil {
			log.Info("fetch: started", "source", src.Name, "protocol", src.Protocol, "host", src.Host, "idle", src.Idle)
			d.fetchers.add(f)
			f.Run(d.ctx)
			f.Close()
			return
		}
		log.Error("fetch: cannot start source, will retry", "source", src.Name, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, 5*time.Minute)
	}
}

// fetcherList keeps the running fetchers, for their panic counts.
type fetcherList struct {
	mu   sync.Mutex
	list []*fetch.Fetcher
}

func (l *fetcherList) add(f *fetch.Fetcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, f)
}

func (l *fetcherList) panics() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, f := range l.list {
		n += f.Panics()
	}
	return n
}
