package daemon

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"posthorn/internal/managesieve"
	"posthorn/internal/store/local"
	"posthorn/internal/users"
)

const sieveAcct = "me@example.test"

func newSieveScripts(t *testing.T) (sieveScripts, *local.Store, context.Context) {
	t.Helper()
	st, err := local.Open(local.Options{Dir: t.TempDir(), Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	if err := st.AddAccount(ctx, users.Account{Address: sieveAcct, PasswordHash: "x", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return sieveScripts{st: st, acct: sieveAcct}, st, ctx
}

// script returns a valid script of n octets, a comment and keep, that
// costs n octets in the directory's JSON too (no line end to escape).
func script(n int) string {
	const head, tail = "/* ", " */ keep;"
	return head + strings.Repeat("<", n-len(head)-len(tail)) + tail
}

// TestSieveScriptsTotal: all of an account's scripts together are bounded
// (maxScriptsBytes), PUTSCRIPT and HAVESPACE answer ErrQuota (NO (QUOTA),
// RFC 5804 §1.3) past it; a replacement counts instead of the script it
// replaces, and one that shrinks is allowed even over the total. Only the
// count and the size of each script used to be bounded: 32 scripts of
// 1 MiB, all in the directory copy rewritten on every directory change.
func TestSieveScriptsTotal(t *testing.T) {
	t.Parallel()
	sc, st, ctx := newSieveScripts(t)
	const k = 1 << 10
	put := func(name string, n int, want error) {
		t.Helper()
		if err := sc.HaveSpace(ctx, name, int64(n)); !errors.Is(err, want) {
			t.Errorf("HAVESPACE %s %d = %v, want %v", name, n, err, want)
		}
		if err := sc.Put(ctx, name, script(n)); !errors.Is(err, want) {
			t.Errorf("PUTSCRIPT %s (%d octets) = %v, want %v", name, n, err, want)
		}
	}
	put("a", 400*k, nil)
	put("b", 400*k, nil)
	put("c", 400*k, managesieve.ErrQuota)
	put("c", maxScriptsBytes-800*k, nil) // exactly the total
	put("b", 400*k+1, managesieve.ErrQuota)
	put("b", 300*k, nil)

	// Over the total (stored before the limit, or by the admin CLI).
	if err := st.PutSieveScript(ctx, sieveAcct, "d", script(900*k)); err != nil {
		t.Fatal(err)
	}
	put("d", 800*k, nil) // shrinks
	put("a", 400*k+1, managesieve.ErrQuota)
	put("e", 20, managesieve.ErrQuota)
}

// TestSieveScriptCostsItsJSON: PUTSCRIPT counts what a script takes in
// the directory's JSON copy, where a control character takes six octets:
// 200 KiB of \x01 in a comment cost 1.2 MiB there and is refused; the
// same size of plain text is stored (red-team run: one account's 1 MiB
// of \x01 made every directory change rewrite 6 MiB).
func TestSieveScriptCostsItsJSON(t *testing.T) {
	t.Parallel()
	sc, _, ctx := newSieveScripts(t)
	ctl := "# " + strings.Repeat("\x01", 200<<10) + "\r\nkeep;\r\n"
	if err := sc.Put(ctx, "ctl", ctl); err == nil {
		t.Error("a script of control characters costing 1.2 MiB of JSON was stored")
	}
	if err := sc.Put(ctx, "plain", script(200<<10)); err != nil {
		t.Errorf("a plain script of the same size: %v", err)
	}
}

// TestSieveStoredScriptsCostTheirJSON: the scripts already stored count
// as stored too: counted by their octets, 32 scripts of control
// characters each just under the limit made 6 MiB of JSON against the
// 1 MiB in all.
func TestSieveStoredScriptsCostTheirJSON(t *testing.T) {
	t.Parallel()
	sc, _, ctx := newSieveScripts(t)
	ctl := func(n int) string { return "# " + strings.Repeat("\x01", n) + "\r\nkeep;\r\n" }
	var stored int64
	for i := range maxScripts {
		body := ctl(30 << 10) // 30 KiB of octets, 180 KiB of JSON
		if err := sc.Put(ctx, "s"+strconv.Itoa(i), body); err != nil {
			break
		}
		stored += storedCost(body)
	}
	if stored > maxScriptsBytes || stored < maxScriptsBytes/2 {
		t.Errorf("scripts costing %d octets of JSON stored against a total of %d (want the total nearly filled, never passed)", stored, maxScriptsBytes)
	}
}
