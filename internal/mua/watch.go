package mua

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Polling when IDLE is missing or quiet for long.
const (
	pollInterval = 15 * time.Second
	// maxIdle ends an IDLE to look anyway: RFC 9051 §6.3.13 servers may
	// drop an idle client after 30 minutes; a quiet NAT sooner.
	maxIdle = 10 * time.Minute
)

// Watch reports every message that arrives in folder, in UID order,
// until ctx ends: IDLE (RFC 2177) wakes it on each EXISTS, NOOP polling
// stands in on servers without IDLE. ready is called once, when it waits
// for the first time. Messages there before Watch started are not
// reported.
func (s *Session) Watch(ctx context.Context, folder string, ready func(), fn func(Summary)) error {
	data, err := s.c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("select %s: %w", folder, err)
	}
	s.selected, s.readOnly = folder, true
	next := data.UIDNext
	if next == 0 { // the server did not say: one past the highest UID
		sd, err := s.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return fmt.Errorf("search %s: %w", folder, err)
		}
		uids, err := searchUIDs(sd)
		if err != nil {
			return fmt.Errorf("search %s: %w", folder, err)
		}
		switch {
		case len(uids) == 0:
			next = 1
		case uids[len(uids)-1] == math.MaxUint32:
			return errUIDsUsedUp(folder)
		default:
			next = uids[len(uids)-1] + 1
		}
	}
	idle := s.c.Caps().Has(imap.CapIdle) || s.c.Caps().Has(imap.CapIMAP4rev2)
	for first := true; ; first = false {
		var news imap.UIDSet
		news.AddRange(next, 0) // next:*
		sums, err := s.summaries(folder, news, next)
		if err != nil {
			return err
		}
		for _, sum := range sums {
			fn(sum)
			if sum.UID == math.MaxUint32 { // nothing can come after it
				return errUIDsUsedUp(folder)
			}
			next = max(next, imap.UID(sum.UID)+1)
		}
		if idle {
			err = s.idle(ctx, func() {
				if first && ready != nil {
					ready()
				}
			})
		} else {
			if first && ready != nil {
				ready()
			}
			err = s.poll(ctx)
		}
		if err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// idle runs IDLE until the server reports EXISTS, ctx ends or maxIdle
// passes.
func (s *Session) idle(ctx context.Context, started func()) error {
	cmd, err := s.c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	started()
	t := time.NewTimer(maxIdle)
	defer t.Stop()
	select {
	case <-s.exists:
	case <-ctx.Done():
	case <-t.C:
	case <-s.c.Closed():
		return errors.New("idle: the server closed the connection")
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	return nil
}

// poll waits pollInterval, then asks with NOOP (EXISTS comes with it).
func (s *Session) poll(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(pollInterval):
	}
	if err := s.c.Noop().Wait(); err != nil {
		return fmt.Errorf("noop: %w", err)
	}
	return nil
}

// errUIDsUsedUp ends a watch on a folder whose highest UID is 4294967295:
// no later message can have a UID (RFC 9051 §2.3.1.1: the server must
// change UIDVALIDITY), and "one past the highest" would wrap round to "*".
func errUIDsUsedUp(folder string) error {
	return fmt.Errorf("watch %s: the server has used up its UIDs (4294967295); select it again", folder)
}
