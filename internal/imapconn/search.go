package imapconn

import (
	"errors"
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"
)

// MaxSearchUIDs is the limit callers give SearchUIDs for a folder's
// search: 4 octets a UID, far above any real mailbox, far below what a
// hostile server could make a client allocate.
const MaxSearchUIDs = 5_000_000

// SearchUIDs turns the answer to a UID SEARCH into the UIDs from `from`
// on, ascending and without repeats, at most limit of them. go-imap's
// AllUIDs must not see a hostile server's answer: it expands ranges
// without bound (an ESEARCH "ALL 1:4000000000" is 16 GB), never ends on a
// range up to 4294967295 (its counter wraps round), and panics on "*".
func SearchUIDs(all imap.NumSet, from uint32, limit int) ([]uint32, error) {
	if all == nil {
		return nil, nil
	}
	set, ok := all.(imap.UIDSet)
	if !ok {
		return nil, errors.New("imap UID SEARCH: the server answered with sequence numbers")
	}
	var uids []uint32
	for _, r := range set {
		if r.Start == 0 || r.Stop == 0 {
			return nil, errors.New(`imap UID SEARCH: the server answered with "*"`)
		}
		lo, hi := uint64(min(r.Start, r.Stop)), uint64(max(r.Start, r.Stop))
		// RFC 9051 §6.4.4.1: "n:*" also matches the highest UID when it
		// is below n, so UIDs below from may come back.
		for u := max(lo, uint64(from)); u <= hi; u++ {
			if len(uids) >= limit {
				return nil, fmt.Errorf("imap UID SEARCH: more than %d messages", limit)
			}
			uids = append(uids, uint32(u))
		}
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
}
