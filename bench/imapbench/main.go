// Command imapbench measures an IMAP server: a mixed workload of many
// clients, the memory of idle (IDLE) connections, and the latency from a
// delivery to the EXISTS an idling client sees. bench/run drives it for
// posthorn and Dovecot side by side; see bench/README.md.
//
//	imapbench freeports N
//	imapbench populate -smtp ADDR -user-fmt FMT -user-n K -n MESSAGES
//	imapbench mixed    -name NAME -imap ADDR -pid PID [-tree] ...
//	imapbench idle     -name NAME -imap ADDR -pid PID [-tree] -conns N ...
//	imapbench latency  -name NAME -imap ADDR -deliver smtp|lmtp -deliver-addr ADDR ...
//	imapbench report   -results DIR
//
// Each measuring subcommand covers one server and writes its result as
// JSON into -results; report prints the tables side by side.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "freeports":
		err = freePorts(args)
	case "adduser":
		err = addUsers(args)
	case "populate":
		err = populate(args)
	case "mixed":
		err = mixed(args)
	case "idle":
		err = idle(args)
	case "latency":
		err = latency(args)
	case "report":
		err = report(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imapbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: imapbench freeports|populate|mixed|idle|latency|report [flags]   (see bench/README.md)")
	os.Exit(2)
}

// serverFlags are the flags naming one server under test.
type serverFlags struct {
	name, imap, auth, password, userFmt, results string
	pid, userN                                   int
	tree, tls                                    bool
}

func (s *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.name, "name", "server", "server name in the tables")
	fs.StringVar(&s.imap, "imap", "", "IMAP address host:port (STARTTLS)")
	fs.StringVar(&s.auth, "auth", "login", "login method: login or scram (AUTHENTICATE SCRAM-SHA-256)")
	fs.StringVar(&s.password, "password", "", "password of every account")
	fs.StringVar(&s.userFmt, "user-fmt", "bench%d@example.test", "account name format, %d from 1 to -user-n")
	fs.IntVar(&s.userN, "user-n", 5, "number of accounts")
	fs.StringVar(&s.results, "results", "", "directory for the JSON results")
	fs.IntVar(&s.pid, "pid", 0, "server PID, for memory and CPU (0: not measured)")
	fs.BoolVar(&s.tree, "tree", false, "the server is a process tree (Dovecot): sum over the PID and its descendants")
	fs.BoolVar(&s.tls, "tls", true, "use STARTTLS")
}

func (s *serverFlags) accounts() ([]*account, error) {
	var out []*account
	for i := 1; i <= s.userN; i++ {
		a, err := newAccount(fmt.Sprintf(s.userFmt, i), s.password)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *serverFlags) tlsConfig() *tls.Config {
	if !s.tls {
		return nil
	}
	return &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(64)} //nolint:gosec // loopback benchmark, self-signed certificates
}

// connect opens a logged-in session.
func (s *serverFlags) connect(a *account, timeout time.Duration) (*imapConn, error) {
	c, err := dialIMAP(s.imap, nil, s.tlsConfig(), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	if err := c.login(a, s.auth); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, nil
}

// raiseNoFile lifts RLIMIT_NOFILE to its hard limit.
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// freePorts prints N free TCP ports on 127.0.0.1, one per line.
func freePorts(args []string) error {
	n := 1
	if len(args) > 0 {
		v, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		n = v
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
