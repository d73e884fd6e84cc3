package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"posthorn/internal/store"
)

// copyFixture appends three messages to INBOX (two in new/, one flagged
// in cur/) and one to a new mailbox Kept, and returns the UIDs in INBOX.
func copyFixture(t *testing.T, s *Store) []uint32 {
	t.Helper()
	uids := []uint32{
		appendMsg(t, s, "INBOX", "Subject: one\r\n\r\n1\r\n"),
		appendMsg(t, s, "INBOX", "Subject: two\r\n\r\n2\r\n"),
		appendMsg(t, s, "INBOX", "Subject: three\r\n\r\n3\r\n", `\Flagged`, "work"),
	}
	must(t, s.CreateMailbox(context.Background(), acct, "Kept", ""))
	appendMsg(t, s, "Kept", "Subject: old\r\n\r\nold\r\n")
	return uids
}

// messageFile returns the file of a message as its index row names it.
func messageFile(t *testing.T, s *Store, mailbox string, uid uint32) (dir, file string) {
	t.Helper()
	id, dir, err := s.mailbox(context.Background(), acct, mailbox)
	must(t, err)
	must(t, s.rdb.QueryRow(`SELECT file FROM messages WHERE mailbox_id = ? AND uid = ?`, id, uid).Scan(&file))
	return dir, file
}

// contents returns the messages of a mailbox as read, in UID order.
func contents(t *testing.T, s *Store, mailbox string) []string {
	t.Helper()
	snap, err := s.Snapshot(context.Background(), acct, mailbox)
	must(t, err)
	var out []string
	for _, m := range snap.Messages {
		out = append(out, readAll(t, s, mailbox, m.UID))
	}
	return out
}

// TestCopyFollowsRenamedFile: a flag change in another session renames a
// message file (here new/ to cur/ with \Seen, behind the index's back)
// between the index read and the link; COPY and MOVE find the file again
// and take every message. They used to fail on ENOENT, and a MOVE left the
// messages before it moved and unindexed.
func TestCopyFollowsRenamedFile(t *testing.T) {
	t.Parallel()
	for _, move := range []bool{false, true} {
		t.Run(fmt.Sprint("move=", move), func(t *testing.T) {
			t.Parallel()
			s, ctx := newStore(t)
			uids := copyFixture(t, s)
			want := append(contents(t, s, "Kept"), contents(t, s, "INBOX")...)
			dir, file := messageFile(t, s, "INBOX", uids[1])
			if !strings.HasPrefix(file, "new/") {
				t.Fatalf("message 2 is %s, want it in new/", file)
			}
			must(t, os.Rename(filepath.Join(dir, file), filepath.Join(dir, "cur", filepath.Base(file)+":2,S")))

			_, src, dst, err := s.Copy(ctx, acct, "INBOX", "Kept", uids, move)
			if err != nil || !slices.Equal(src, uids) || len(dst) != 3 {
				t.Fatalf("Copy = %v %v %v; want all three copied", src, dst, err)
			}
			if got := contents(t, s, "Kept"); !slices.Equal(got, want) {
				t.Errorf("Kept holds %q, want %q", got, want)
			}
			left := 3
			if move {
				left = 0
			}
			if got := contents(t, s, "INBOX"); len(got) != left {
				t.Errorf("INBOX holds %d messages, want %d", len(got), left)
			}
			diskAgrees(t, s, ctx, acct, "INBOX", "after the copy")
			diskAgrees(t, s, ctx, acct, "Kept", "after the copy")
		})
	}
}

// TestCopySkipsVanishedFile: a message whose file is gone from the
// Maildir (another program deleted it; its row is still there) is skipped
// like one expunged meanwhile, and the others are copied (see copyOne for
// why not fail the whole COPY). It used to fail the COPY on ENOENT, with
// the messages before it left in the target unindexed.
func TestCopySkipsVanishedFile(t *testing.T) {
	t.Parallel()
	for _, move := range []bool{false, true} {
		t.Run(fmt.Sprint("move=", move), func(t *testing.T) {
			t.Parallel()
			s, ctx := newStore(t)
			uids := copyFixture(t, s)
			in := contents(t, s, "INBOX")
			dir, file := messageFile(t, s, "INBOX", uids[1])
			must(t, os.Remove(filepath.Join(dir, file)))

			_, src, dst, err := s.Copy(ctx, acct, "INBOX", "Kept", uids, move)
			if err != nil || !slices.Equal(src, []uint32{uids[0], uids[2]}) || len(dst) != 2 {
				t.Fatalf("Copy = %v %v %v; want the first and third copied", src, dst, err)
			}
			if got := contents(t, s, "Kept"); len(got) != 3 || got[1] != in[0] || got[2] != in[2] {
				t.Errorf("Kept holds %q", got)
			}
			left := 2 // the sync in Snapshot expunges the vanished one
			if move {
				left = 0
			}
			if got := contents(t, s, "INBOX"); len(got) != left {
				t.Errorf("INBOX holds %d messages, want %d", len(got), left)
			}
		})
	}
}

// boxState is what a failed COPY or MOVE must leave as it was: the
// Maildir's files, and (after a sync) the index's messages, UIDNEXT and
// HIGHESTMODSEQ.
type boxState struct {
	files []string
	index string
}

func stateOf(t *testing.T, s *Store, mailbox string) boxState {
	t.Helper()
	_, dir, err := s.mailbox(context.Background(), acct, mailbox)
	must(t, err)
	var st boxState
	for _, sd := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sd))
		must(t, err)
		for _, e := range ents {
			st.files = append(st.files, sd+"/"+e.Name())
		}
	}
	snap, err := s.Snapshot(context.Background(), acct, mailbox) // syncs
	must(t, err)
	st.index = fmt.Sprintf("uidnext %d modseq %d", snap.UIDNext, snap.HighestModSeq)
	for _, m := range snap.Messages {
		st.index += fmt.Sprintf("; %d %v %d %d", m.UID, m.Flags, m.Size, m.ModSeq)
	}
	return st
}

// TestCopyFailureUndone: a COPY or MOVE that fails after files were
// placed (at the third message, whose keyword cannot be saved in the
// target; in the target's directory fsync; or in the index write: here
// the client's context ends) leaves both mailboxes as they were, on disk
// and in the index; a COPY used to leave its links (indexed by the next
// sync), a MOVE its renamed files (the mail moved although the answer
// was NO). Syncs of both mailboxes started in that moment must not index
// the placed files (for a move, expunge them from the source), or the
// undo could not restore the source's UIDs.
func TestCopyFailureUndone(t *testing.T) {
	t.Parallel()
	for _, move := range []bool{false, true} {
		for _, fail := range []string{"place", "dirsync", "index"} {
			t.Run(fmt.Sprintf("move=%v/%s", move, fail), func(t *testing.T) {
				t.Parallel()
				bothModes(t, func(t *testing.T, s *Store, ctx context.Context) {
					copyFailureUndone(t, s, ctx, move, fail)
				})
			})
		}
	}
}

func copyFailureUndone(t *testing.T, s *Store, ctx context.Context, move bool, fail string) {
	uids := copyFixture(t, s)
	beforeIn, beforeKept := stateOf(t, s, "INBOX"), stateOf(t, s, "Kept")
	_, keptDir, err := s.mailbox(ctx, acct, "Kept")
	must(t, err)
	if fail == "place" { // the keyword file cannot be replaced
		must(t, os.Mkdir(filepath.Join(keptDir, keywordsFile), 0o700))
	}
	copyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var syncs sync.WaitGroup
	var once sync.Once
	s.dirSync.fsync = func(dir string) error {
		if dir != filepath.Join(keptDir, "cur") {
			return syncDir(dir)
		}
		once.Do(func() { syncsMeanwhile(t, s, &syncs) })
		if fail == "index" {
			cancel()
			return syncDir(dir)
		}
		return syscall.EIO
	}
	_, _, _, err = s.Copy(copyCtx, acct, "INBOX", "Kept", uids, move)
	syncs.Wait()
	if want := map[string]error{"place": syscall.EEXIST, "dirsync": syscall.EIO, "index": context.Canceled}[fail]; !errors.Is(err, want) {
		t.Fatalf("Copy = %v, want %v", err, want)
	}
	s.dirSync.fsync = syncDir
	afterIn, afterKept := stateOf(t, s, "INBOX"), stateOf(t, s, "Kept")
	if !slices.Equal(afterKept.files, beforeKept.files) {
		t.Errorf("Kept files %v, want %v", afterKept.files, beforeKept.files)
	}
	if !slices.Equal(afterIn.files, beforeIn.files) {
		t.Errorf("INBOX files %v, want %v", afterIn.files, beforeIn.files)
	}
	if afterKept.index != beforeKept.index {
		t.Errorf("Kept index after a sync:\n%s\nwant\n%s", afterKept.index, beforeKept.index)
	}
	if afterIn.index != beforeIn.index {
		t.Errorf("INBOX index after a sync:\n%s\nwant\n%s", afterIn.index, beforeIn.index)
	}
}

// syncsMeanwhile starts syncs of both mailboxes and gives them a moment to
// finish (they must instead wait for the copy to end).
func syncsMeanwhile(t *testing.T, s *Store, wg *sync.WaitGroup) {
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for _, m := range []string{"INBOX", "Kept"} {
			if err := s.Sync(context.Background(), acct, m); err != nil {
				t.Error(err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(300 * time.Millisecond):
	}
}

// TestCopyQuota: a COPY that would take the account past its quota fails
// with ErrOverQuota and places nothing (RFC 9051 §6.4.7); one that reaches
// the limit exactly is allowed, by Append's rule (used + added ≤ limit);
// a MOVE, which leaves the account's usage as it was, is allowed even at
// the limit. COPY used to ignore the quota: six COPYs of one message took
// an account with a 20000-octet quota to 51000.
func TestCopyQuota(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	uids := copyFixture(t, s)
	must(t, s.SetQuota(ctx, acct, 1<<30))
	used, _, err := s.Quota(ctx, acct)
	must(t, err)
	snap, err := s.Snapshot(ctx, acct, "INBOX")
	must(t, err)
	two := snap.Messages[0].Size + snap.Messages[1].Size

	must(t, s.SetQuota(ctx, acct, used+two-1))
	before := stateOf(t, s, "Kept")
	if _, _, _, err := s.Copy(ctx, acct, "INBOX", "Kept", uids[:2], false); !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("Copy past the quota = %v, want ErrOverQuota", err)
	}
	if after := stateOf(t, s, "Kept"); !slices.Equal(after.files, before.files) || after.index != before.index {
		t.Errorf("a refused COPY changed Kept: %+v, was %+v", after, before)
	}

	must(t, s.SetQuota(ctx, acct, used+two))
	if _, _, dst, err := s.Copy(ctx, acct, "INBOX", "Kept", uids[:2], false); err != nil || len(dst) != 2 {
		t.Fatalf("Copy up to the quota = %v %v, want both copied", dst, err)
	}
	if _, _, dst, err := s.Copy(ctx, acct, "INBOX", "Kept", uids[2:], true); err != nil || len(dst) != 1 {
		t.Fatalf("Move at the quota = %v %v, want it moved", dst, err)
	}
	if _, _, _, err := s.Copy(ctx, acct, "INBOX", "Kept", uids[:1], false); !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("Copy at the quota = %v, want ErrOverQuota", err)
	}
	if u, l, _ := s.Quota(ctx, acct); u != l {
		t.Errorf("usage %d, want the limit %d", u, l)
	}
}
