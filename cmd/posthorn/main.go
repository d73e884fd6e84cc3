// Command posthorn is the Posthorn mail system: server, admin tool,
// sendmail and mailq. Installed (or linked) as "sendmail" or "mailq" it
// behaves as those commands. See internal/cli.
package main

import (
	"os"

	"posthorn/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
