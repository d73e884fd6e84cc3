package unixmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// exTempFail is sysexits(3) EX_TEMPFAIL: the program asks to be retried.
const exTempFail = 75

// runPipe runs a pipe target's command with /bin/sh as its user, in its
// home directory, with the message on standard input and a small, fixed
// environment (no variable of ours leaks to it). Exit 0 is delivered,
// EX_TEMPFAIL and a timeout are temporary, anything else is permanent.
func (s *System) runPipe(ctx context.Context, t Target, from string, msg io.Reader) error {
	closeInherited.Do(markInheritedCloseOnExec)
	ctx, cancel := context.WithTimeout(ctx, s.opts.PipeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", t.Command)
	cmd.Dir = t.User.Home
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.User.Home, "USER=" + t.User.Name,
		"LOGNAME=" + t.User.Name, "SHELL=/bin/sh", "SENDER=" + from}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.chown {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(t.User.UID), Gid: uint32(t.User.GID), Groups: []uint32{}}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A process the command leaves behind (setsid sleep 60 &) keeps the
	// output pipe open: stop waiting for it a second after the command
	// ends, or it held the delivery past pipe_timeout.
	cmd.WaitDelay = time.Second
	var stdin bytes.Buffer
	if _, err := copyLF(&stdin, msg); err != nil {
		return err
	}
	cmd.Stdin = &stdin
	// Only the start of the output is used: "|yes" grew the daemon by a
	// gigabyte before its timeout.
	out := &headWriter{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success():
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("pipe %q timed out after %v", t.Command, s.opts.PipeTimeout)
	case errors.As(err, &ee) && ee.ExitCode() == exTempFail:
		return fmt.Errorf("pipe %q: temporary failure (exit 75): %s", t.Command, firstLine(out.buf.Bytes()))
	case errors.As(err, &ee):
		return Permanent{fmt.Errorf("pipe %q failed (exit %d): %s", t.Command, ee.ExitCode(), firstLine(out.buf.Bytes()))}
	}
	return err
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	if len(line) > 200 {
		line = line[:200]
	}
	return string(line)
}

// headWriter keeps the first max octets written to it and drops the rest.
type headWriter struct {
	buf bytes.Buffer
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// closeInherited marks, once, the descriptors this process was started
// with (beyond standard input, output and error) close-on-exec: Go opens
// its own so, but ones a parent left open (a service manager's sockets,
// a shell's) went on to every pipe command, run as the mail's user.
var closeInherited sync.Once

func markInheritedCloseOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
