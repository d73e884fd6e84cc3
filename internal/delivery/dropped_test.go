package delivery_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"posthorn/internal/pickup"
)

// TestSubmitDroppedChecksLikeTheSocket: a maildrop file any local user
// can write by hand gets the checks the sendmail socket applies: no NUL,
// no line over the limit, RET and ENVID as MAIL takes them. It skipped
// them (found by a red-team run: a 5000-octet line and a NUL were
// delivered and relayed). Such a file is refused for good; a good one
// is delivered.
func TestSubmitDroppedChecksLikeTheSocket(t *testing.T) {
	t.Parallel()
	f, _ := submitFixture(t)
	ctx := context.Background()
	uid := os.Getuid()
	env := pickup.Envelope{From: "", Rcpts: []string{"me@example.test"}}
	good := crlf("Subject: fine", "", "body")
	if err := f.router.SubmitDropped(ctx, uid, env, strings.NewReader(good)); err != nil {
		t.Fatalf("good file: %v", err)
	}
	for name, c := range map[string]struct {
		env pickup.Envelope
		msg string
	}{
		"NUL":        {env, crlf("Subject: x", "", "a\x00b")},
		"long line":  {env, crlf("Subject: x", "", strings.Repeat("y", 5000))},
		"bad RET":    {pickup.Envelope{Rcpts: env.Rcpts, Ret: "BOGUS"}, good},
		"long ENVID": {pickup.Envelope{Rcpts: env.Rcpts, EnvID: strings.Repeat("e", 5000)}, good},
	} {
		err := f.router.SubmitDropped(ctx, uid, c.env, strings.NewReader(c.msg))
		p, ok := err.(interface{ Permanent() bool })
		if err == nil || !ok || !p.Permanent() {
			t.Errorf("%s: %v, want a permanent refusal", name, err)
		}
	}
	if n := len(f.copies(t, "me")); n != 1 {
		t.Errorf("%d copies stored, want only the good one", n)
	}
}
