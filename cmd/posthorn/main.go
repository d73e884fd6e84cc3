// Command posthorn is the Posthorn mail system: server, admin tool and, as
// later agents land, sendmail, mailq and the mail client. See internal/cli.
package main

import (
	"os"

	"posthorn/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
