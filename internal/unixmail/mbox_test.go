package unixmail

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// TestEscapeMboxrdLongLines: lines longer than the reader's buffer (since
// smtp.max_line_length allows them) keep their text, get LF line ends
// whichever piece their CR falls in, and a "From " at the start of a
// piece that continues a line is not quoted.
func TestEscapeMboxrdLongLines(t *testing.T) {
	const buf = 64 << 10
	for _, n := range []int{buf - 2, buf - 1, buf, buf + 1, 3 * buf} {
		a := strings.Repeat("a", n)
		cases := map[string]string{
			"Subject: x\r\n\r\n" + a + "\r\nFrom here\r\n":    "Subject: x\n\n" + a + "\n>From here\n\n",
			"S: x\r\n\r\n" + a + "\rb\r\n":                    "S: x\n\n" + a + "\rb\n\n",
			"S: x\r\n\r\n" + a + "\r":                         "S: x\n\n" + a + "\r\n\n",
			"S: x\r\n\r\n" + a[:n-5] + "From x\r\nFrom y\r\n": "S: x\n\n" + a[:n-5] + "From x\n>From y\n\n",
		}
		for in, want := range cases {
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			if err := escapeMboxrd(w, strings.NewReader(in)); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			if out.String() != want {
				got := out.String()
				t.Errorf("line of %d: got …%q, want …%q", n, got[max(0, len(got)-30):], want[max(0, len(want)-30):])
			}
		}
	}
}
