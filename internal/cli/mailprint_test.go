package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEscapeUnsafe: the C1 controls and bidirectional overrides that
// encoding/json leaves as they are come out as \u escapes, so --json
// output sends no escape sequence to a terminal, and it is the same JSON.
func TestEscapeUnsafe(t *testing.T) {
	t.Parallel()
	in := map[string]string{"subject": "a\u009b31mred\u202ereversed\x7f é 日本"}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := escapeUnsafe(js)
	if strings.ContainsAny(string(out), "\u009b\u202e\x7f") ||
		!strings.Contains(string(out), `\u009b`) || !strings.Contains(string(out), "é 日本") {
		t.Errorf("escaped: %q", out)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["subject"] != in["subject"] {
		t.Errorf("decodes to %q, %v", back, err)
	}
}
