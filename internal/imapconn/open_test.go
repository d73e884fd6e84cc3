package imapconn

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestOpenBoundsHostileServer runs go-imap's client through Open against
// a server that answers CAPABILITY with a literal announced at 4 GB and
// then sends octets without end, or with a line that never ends: the
// command fails once a response passes the bound, and the client has not
// grown by anything like what was sent.
func TestOpenBoundsHostileServer(t *testing.T) {
	t.Parallel()
	for name, reply := range map[string]string{
		"huge literal": "* CAPABILITY {4000000000}\r\n",
		"endless line": "* CAPABILITY IMAP4rev1",
		// Inside MaxResponse but past MaxText: parsed into millions of
		// values, this grew posthorn mail to 3.3 GB.
		"endless flag list": "* 1 FETCH (FLAGS (",
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				// Capabilities in the greeting: without them go-imap asks
				// for them at once, and its reader could fail on the
				// hostile answer while WaitGreeting picked that failure
				// over the greeting (a flaky "got error before greeting").
				c.Write([]byte("* OK [CAPABILITY IMAP4rev1] hostile\r\n"))
				buf := make([]byte, 512)
				c.Read(buf) // the command
				c.Write([]byte(reply))
				junk := []byte(strings.Repeat(`\Seen `, 10<<10))
				for range 4096 { // 256 MiB at most
					if _, err := c.Write(junk); err != nil {
						return
					}
				}
			}()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			c, _, err := Open(context.Background(), conn, false, nil, ln.Addr().String(), 5*time.Second, 1<<30, nil)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer c.Close()
			done := make(chan error, 1)
			go func() {
				_, err := c.Capability().Wait()
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("CAPABILITY succeeded")
				}
			// A hang detector only: parsing the 16 MiB of flags up to
			// MaxText takes 13 s under the race detector on an idle
			// 2-core machine, and went past 20 s in a busy CI run.
			case <-time.After(90 * time.Second):
				t.Fatal("CAPABILITY still running after 90 s")
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grown := int64(after.TotalAlloc) - int64(before.TotalAlloc); grown > 1<<30 {
				t.Errorf("the client allocated %d MiB for a response whose text is bounded at %d MiB", grown>>20, MaxText>>20)
			}
		})
	}
}
