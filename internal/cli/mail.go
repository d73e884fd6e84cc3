package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/emersion/go-imap/v2"
	"github.com/spf13/cobra"

	"posthorn/internal/config"
	"posthorn/internal/mua"
)

// mailFlags are the flags every `posthorn mail` command shares.
type mailFlags struct {
	config       string
	profile      string
	folder       string
	json         bool
	user         string
	passwordFile string
	debug        bool
}

func (a *app) mailCmd() *cobra.Command {
	f := &mailFlags{}
	cmd := &cobra.Command{
		Use:   "mail",
		Short: "A mail client: read over IMAP, send over submission, with any server",
		Long: `posthorn mail reads and files mail over IMAP and sends it through a
submission server (587 STARTTLS or 465 TLS, with AUTH) or, with --direct,
straight to the recipients' MX hosts. It works with any server.

Accounts are profiles in $XDG_CONFIG_HOME/posthorn/client.toml
(~/.config/posthorn/client.toml). Without that file, the listeners of the
local posthorn (POSTHORN_CONFIG or ` + DefaultConfig + `) are used, with
--user and a password from --password-file or the terminal.

Message ids are IMAP UIDs in the folder given by --folder (INBOX). Every
listing and reading command prints JSON with --json. See docs/mail.md.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.config, "config", "", "client configuration file, or a posthorn server configuration whose listeners to use (default $XDG_CONFIG_HOME/posthorn/client.toml)")
	pf.StringVarP(&f.profile, "profile", "P", "", "profile of the client configuration (default: its default)")
	pf.StringVarP(&f.folder, "folder", "f", "INBOX", "folder the message ids are in")
	pf.BoolVar(&f.json, "json", false, "print JSON (for scripts)")
	pf.StringVar(&f.user, "user", "", "login name, instead of the profile's")
	pf.StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of this file")
	pf.BoolVar(&f.debug, "debug", false, "print the IMAP conversation on stderr (passwords included)")
	cmd.AddCommand(a.mailSendCmd(f), a.mailLsCmd(f), a.mailReadCmd(f), a.mailReplyCmd(f), a.mailForwardCmd(f),
		a.mailMvCmd(f), a.mailRmCmd(f), a.mailFlagCmd(f), a.mailFoldersCmd(f), a.mailSearchCmd(f), a.mailWatchCmd(f))
	return cmd
}

// --- profiles ----------------------------------------------------------------

// mailProfile finds the profile to use: --config, else client.toml in the
// user's configuration directory, else the local posthorn's listeners.
func (a *app) mailProfile(f *mailFlags) (*mua.Profile, error) {
	path := f.config
	if path == "" {
		def, err := mua.DefaultPath()
		if err == nil {
			if _, err := os.Stat(def); err == nil {
				path = def
			}
		}
	}
	var p *mua.Profile
	var err error
	switch {
	case path != "":
		p, err = a.profileFromFile(path, f)
	case f.profile != "":
		err = fmt.Errorf("--profile %s: no client configuration (write ~/.config/posthorn/client.toml, see docs/mail.md)", f.profile)
	default:
		p, err = a.localProfile(a.configPath, f.user)
	}
	if err != nil {
		return nil, err
	}
	if f.user != "" {
		if p.From == p.User {
			p.From = f.user
		}
		p.User = f.user
	}
	if f.passwordFile != "" {
		p.Password = mua.PasswordFile(f.passwordFile)
	}
	if p.Password == nil && p.User != "" {
		p.Password = mua.TerminalPassword(p.User)
	}
	return p, nil
}

// profileFromFile loads a client configuration. --config may also name a
// posthorn server configuration: then its listeners are used.
func (a *app) profileFromFile(path string, f *mailFlags) (*mua.Profile, error) {
	file, err := mua.LoadFile(path)
	if err == nil {
		return file.Profile(f.profile)
	}
	if _, serr := config.Load(path); serr != nil {
		return nil, err // not a server configuration either: the client's error
	}
	if f.profile != "" {
		return nil, fmt.Errorf("--profile %s: %s is a server configuration, which has no profiles", f.profile, path)
	}
	return a.localProfile(path, f.user)
}

// localProfile builds a profile for the posthorn whose configuration is
// at path: its IMAP and submission listeners on loopback when they listen
// on every address, trusting exactly the certificate it serves.
func (a *app) localProfile(path, user string) (*mua.Profile, error) {
	cfg, err := config.Load(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no client configuration (~/.config/posthorn/client.toml, see docs/mail.md) and no posthorn server configuration at %s", path)
		}
		return nil, err
	}
	if user == "" {
		return nil, fmt.Errorf("using the listeners of %s: say who you are with --user ADDRESS (or write a client.toml)", path)
	}
	p := &mua.Profile{Name: "local", User: user}
	p.IMAP = mua.LocalServer(cfg.Listen.IMAPS, cfg.Listen.IMAP)
	p.Submission = mua.LocalServer(cfg.Listen.Submissions, cfg.Listen.Submission)
	if cfg.TLS.CertFile != "" {
		if fp, err := mua.CertFingerprint(cfg.TLS.CertFile); err == nil {
			p.TLSFingerprint = fp
		} else {
			p.TLSServerName = cfg.Hostname
		}
	}
	if err := p.Check(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return p, nil
}

// imapSession loads the profile and logs in.
func (a *app) imapSession(ctx context.Context, f *mailFlags) (*mua.Profile, *mua.Session, error) {
	p, err := a.mailProfile(f)
	if err != nil {
		return nil, nil, err
	}
	var debug io.Writer
	if f.debug {
		debug = a.stderr
	}
	s, err := mua.Dial(ctx, p, debug)
	if err != nil {
		return nil, nil, err
	}
	return p, s, nil
}

// withIMAP runs fn in a logged-in session.
func (a *app) withIMAP(f *mailFlags, fn func(ctx context.Context, p *mua.Profile, s *mua.Session) error) error {
	ctx := context.Background()
	p, s, err := a.imapSession(ctx, f)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, p, s)
}

// printJSON writes v indented.
func (a *app) printJSON(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := a.stdout.Write(escapeUnsafe(b.Bytes()))
	return err
}

// escapeUnsafe writes the runes a terminal acts on that encoding/json
// leaves as they are (DEL, C1 controls, bidirectional overrides) as \u
// escapes: the same JSON, safe to print. JSON has such runes only in
// strings, where the escape means the same.
func escapeUnsafe(js []byte) []byte {
	// encoding/json escapes C0 controls itself; DEL and above are ours.
	unsafe := func(r rune) bool { return r >= 0x7f && mua.Unsafe(r) }
	if !bytes.ContainsFunc(js, unsafe) {
		return js
	}
	var out bytes.Buffer
	for _, r := range string(js) {
		if unsafe(r) {
			fmt.Fprintf(&out, "\\u%04x", r)
		} else {
			out.WriteRune(r)
		}
	}
	return out.Bytes()
}

// --- sending -----------------------------------------------------------------

// composeFlags are the flags of the commands that write a message.
type composeFlags struct {
	to, cc, bcc []string
	subject     string
	body        string
	attach      []string
	direct      bool
}

func (c *composeFlags) register(cmd *cobra.Command, recipients bool) {
	fl := cmd.Flags()
	if recipients {
		fl.StringArrayVarP(&c.to, "to", "t", nil, "recipient (repeatable; a comma-separated list is fine)")
	}
	fl.StringArrayVarP(&c.cc, "cc", "c", nil, "copy to (repeatable)")
	fl.StringArrayVar(&c.bcc, "bcc", nil, "blind copy to: in the envelope only, never in the header sent (repeatable)")
	fl.StringVarP(&c.body, "body", "b", "", "the text (default: standard input, or $EDITOR on a terminal)")
	fl.StringArrayVarP(&c.attach, "attach", "a", nil, "attach a file (repeatable)")
	fl.BoolVar(&c.direct, "direct", false, "deliver to the recipients' MX hosts instead of the submission server")
}

func parseAddrs(list []string) ([]*mail.Address, error) {
	var out []*mail.Address
	for _, s := range list {
		as, err := mail.ParseAddressList(s)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", s, err)
		}
		out = append(out, as...)
	}
	return out, nil
}

func (c *composeFlags) addresses(d *mua.Draft) error {
	var err error
	to, err := parseAddrs(c.to)
	if err != nil {
		return err
	}
	cc, err := parseAddrs(c.cc)
	if err != nil {
		return err
	}
	bcc, err := parseAddrs(c.bcc)
	if err != nil {
		return err
	}
	d.To, d.Cc, d.Bcc = append(d.To, to...), append(d.Cc, cc...), append(d.Bcc, bcc...)
	return nil
}

func (c *composeFlags) attachments(d *mua.Draft) error {
	for _, path := range c.attach {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("attach: %w", err)
		}
		d.Attachments = append(d.Attachments, mua.Attachment{Filename: filepath.Base(path), Data: data})
	}
	return nil
}

// text returns the body: --body, else standard input, else what the user
// writes in $VISUAL or $EDITOR, starting from template. template (a
// quoted original) comes first in every case.
func (a *app) text(cmd *cobra.Command, c *composeFlags, template string) (string, error) {
	if cmd.Flags().Changed("body") {
		return template + c.body, nil
	}
	if !a.stdinIsTerminal() {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return "", fmt.Errorf("read the text from standard input: %w", err)
		}
		return template + string(b), nil
	}
	return a.edit(template)
}

// stdinIsTerminal: a character device that is not /dev/null.
func (a *app) stdinIsTerminal() bool { return isTerminal(a.stdin) }

// isTerminal: f is an *os.File on a character device that is not
// /dev/null.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}

// edit runs the user's editor on a file holding template.
func (a *app) edit(template string) (string, error) {
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	tmp, err := os.CreateTemp("", "posthorn-mail-*.txt")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(template); err != nil {
		tmp.Close()
		return "", err
	}
	tmp.Close()
	// sh -c: $EDITOR may carry arguments ("emacs -nw").
	cmd := exec.Command("/bin/sh", "-c", editor+` "$1"`, "sh", tmp.Name())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("editor %s: %w (nothing sent)", editor, err)
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(string(b)) == "" || string(b) == template {
		return "", errors.New("the text was left empty or unchanged: nothing sent")
	}
	return string(b), nil
}

// sendResult is what `mail send --json` prints.
type sendResult struct {
	MessageID  string           `json:"message_id"`
	Recipients []mua.RcptResult `json:"recipients"`
	SentFolder string           `json:"sent_folder,omitempty"`
}

// send composes d, sends it and saves the copy in Sent. after, when not
// nil, runs in the IMAP session once the message is out (to flag the
// original of a reply).
func (a *app) send(ctx context.Context, f *mailFlags, p *mua.Profile, d mua.Draft, direct bool,
	after func(*mua.Session) error) error {
	c, err := mua.Compose(d)
	if err != nil {
		return err
	}
	var results []mua.RcptResult
	if direct {
		results, err = mua.SendDirect(ctx, p, c)
	} else {
		results, err = mua.Submit(ctx, p, c)
	}
	res := sendResult{MessageID: c.MessageID, Recipients: results}
	for _, r := range results {
		if !f.json {
			state := "sent"
			if !r.OK() {
				state = "NOT sent"
			}
			fmt.Fprintf(a.stderr, "%s: %s\n", state, mua.Printable(r.String()))
		}
	}
	if err != nil {
		return err
	}
	var refused []string
	for _, r := range results {
		if !r.OK() {
			refused = append(refused, r.Addr)
		}
	}
	var saveErr error
	if p.IMAP.Host != "" && (p.SavesSent() || after != nil) {
		saveErr = a.afterSend(ctx, f, p, c, after, &res)
	} else if p.SavesSent() && !f.json {
		fmt.Fprintf(a.stderr, "profile %q has no [imap] server: no copy saved\n", p.Name)
	}
	if f.json {
		if err := a.printJSON(res); err != nil {
			return err
		}
	} else if res.SentFolder != "" {
		fmt.Fprintf(a.stderr, "saved a copy in %s\n", mua.Printable(res.SentFolder))
	}
	switch {
	case saveErr != nil:
		return fmt.Errorf("the message was sent, but: %w", saveErr)
	case len(refused) > 0:
		return fmt.Errorf("not sent to %s", strings.Join(refused, ", "))
	}
	return nil
}

func (a *app) afterSend(ctx context.Context, f *mailFlags, p *mua.Profile, c *mua.Composed, after func(*mua.Session) error, res *sendResult) error {
	var debug io.Writer
	if f.debug {
		debug = a.stderr
	}
	s, err := mua.Dial(ctx, p, debug)
	if err != nil {
		return err
	}
	defer s.Close()
	if p.SavesSent() {
		if res.SentFolder, err = s.SaveSent(c.Copy); err != nil {
			return err
		}
	}
	if after != nil {
		return after(s)
	}
	return nil
}

func (a *app) mailSendCmd(f *mailFlags) *cobra.Command {
	c := &composeFlags{}
	cmd := &cobra.Command{
		Use:   "send --to ADDRESS [--subject TEXT] [--attach FILE]...",
		Short: "Write and send a message; a copy goes to the Sent folder",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.mailProfile(f)
			if err != nil {
				return err
			}
			from, err := p.FromAddress()
			if err != nil {
				return err
			}
			d := mua.Draft{From: from, Subject: c.subject}
			if err := c.addresses(&d); err != nil {
				return err
			}
			if len(d.To)+len(d.Cc)+len(d.Bcc) == 0 {
				return errors.New("no recipient: give --to, --cc or --bcc")
			}
			if err := c.attachments(&d); err != nil {
				return err
			}
			if d.Text, err = a.text(cmd, c, ""); err != nil {
				return err
			}
			return a.send(context.Background(), f, p, d, c.direct, nil)
		},
	}
	c.register(cmd, true)
	cmd.Flags().StringVarP(&c.subject, "subject", "s", "", "subject")
	return cmd
}

// original fetches the message a reply or forward is about (without
// marking it \Seen) and the From of the answer.
func (a *app) original(ctx context.Context, f *mailFlags, id string) (*mua.Profile, *mua.Message, *mail.Address, error) {
	uid, err := mua.ParseUID(id)
	if err != nil {
		return nil, nil, nil, err
	}
	p, s, err := a.imapSession(ctx, f)
	if err != nil {
		return nil, nil, nil, err
	}
	orig, err := s.Fetch(f.folder, uid, true)
	s.Close()
	if err != nil {
		return nil, nil, nil, err
	}
	from, err := p.FromAddress()
	if err != nil {
		return nil, nil, nil, err
	}
	return p, orig, from, nil
}

func (a *app) mailReplyCmd(f *mailFlags) *cobra.Command {
	c := &composeFlags{}
	var all bool
	cmd := &cobra.Command{
		Use:   "reply ID [--all]",
		Short: "Answer a message: quoted with \"> \", Re: subject, threaded (In-Reply-To, References)",
		Long: `reply answers the message with UID ID of --folder. The text starts with
the original, quoted with "> "; your text (--body, standard input or your
editor, which opens on the quote) follows. --all copies every recipient of
the original except your own addresses (from, user and alternates of the
profile). The original gets the \Answered flag.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, orig, from, err := a.original(ctx, f, args[0])
			if err != nil {
				return err
			}
			uid := orig.UID
			d := mua.Reply(orig, from, p.Me(), all, "")
			if err := c.addresses(&d); err != nil {
				return err
			}
			if len(d.To)+len(d.Cc)+len(d.Bcc) == 0 {
				return errors.New("the original names nobody to answer: give --to")
			}
			if err := c.attachments(&d); err != nil {
				return err
			}
			if d.Text, err = a.text(cmd, c, d.Text); err != nil {
				return err
			}
			return a.send(ctx, f, p, d, c.direct, func(s *mua.Session) error {
				return s.Flag(f.folder, imap.UIDSetNum(imap.UID(uid)), imap.FlagAnswered, true)
			})
		},
	}
	c.register(cmd, true)
	cmd.Flags().BoolVar(&all, "all", false, "answer every recipient too (without yourself)")
	return cmd
}

func (a *app) mailForwardCmd(f *mailFlags) *cobra.Command {
	c := &composeFlags{}
	cmd := &cobra.Command{
		Use:   "forward ID --to ADDRESS",
		Short: "Forward a message whole, attached as message/rfc822",
		Long: `forward sends the message with UID ID of --folder to new recipients as
an attachment (message/rfc822, RFC 2046 §5.2.1): its header, text,
attachments and signatures arrive untouched and every mail client shows it
as a message. Your text (--body, standard input or your editor) comes
before it. The original gets the $Forwarded keyword where the server keeps
keywords.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, orig, from, err := a.original(ctx, f, args[0])
			if err != nil {
				return err
			}
			uid := orig.UID
			d := mua.Forward(orig, from, nil, "")
			if err := c.addresses(&d); err != nil {
				return err
			}
			if len(d.To)+len(d.Cc)+len(d.Bcc) == 0 {
				return errors.New("no recipient: give --to")
			}
			if err := c.attachments(&d); err != nil {
				return err
			}
			if d.Text, err = a.text(cmd, c, ""); err != nil {
				return err
			}
			return a.send(ctx, f, p, d, c.direct, func(s *mua.Session) error {
				// Best effort: a server without keywords refuses it.
				_ = s.Flag(f.folder, imap.UIDSetNum(imap.UID(uid)), imap.FlagForwarded, true)
				return nil
			})
		},
	}
	c.register(cmd, true)
	return cmd
}

// --- reading -----------------------------------------------------------------

func (a *app) mailLsCmd(f *mailFlags) *cobra.Command {
	var unseen bool
	var limit int
	cmd := &cobra.Command{
		Use:   "ls [FOLDER] [--unseen] [--limit N]",
		Short: "List the messages of a folder (default --folder, INBOX), oldest first",
		Long: `ls lists messages: UID, flags (N new, D deleted, F flagged, R replied,
@ attachment), date, sender and subject. --limit keeps the newest N.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			folder := f.folder
			if len(args) == 1 {
				folder = args[0]
			}
			var crit *imap.SearchCriteria
			if unseen {
				crit = &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}
			}
			return a.listMessages(f, folder, crit, limit)
		},
	}
	cmd.Flags().BoolVar(&unseen, "unseen", false, "only messages not read yet")
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "at most the newest N messages (0: all)")
	return cmd
}

func (a *app) listMessages(f *mailFlags, folder string, crit *imap.SearchCriteria, limit int) error {
	if limit < 0 {
		return errors.New("--limit must not be negative")
	}
	return a.withIMAP(f, func(_ context.Context, _ *mua.Profile, s *mua.Session) error {
		sums, err := s.List(folder, crit, limit)
		if err != nil {
			return err
		}
		if f.json {
			if sums == nil {
				sums = []mua.Summary{}
			}
			return a.printJSON(sums)
		}
		if len(sums) == 0 {
			fmt.Fprintf(a.stderr, "no messages in %s\n", mua.Printable(folder))
			return nil
		}
		mua.WriteListHeader(a.stdout)
		for _, m := range sums {
			mua.WriteSummary(a.stdout, m)
		}
		return nil
	})
}

func (a *app) mailSearchCmd(f *mailFlags) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Search --folder with IMAP SEARCH: words, from: to: subject: is:unseen...",
		Long: `search lists the messages of --folder that match every term (the words
of QUERY may be given as separate arguments):

  word, "some words"   anywhere in the header or body (IMAP TEXT)
  from:X to:X cc:X bcc:X subject:X body:X text:X
  is:seen is:unseen is:flagged is:unflagged is:answered is:unanswered
  is:deleted is:draft
  since:2024-05-01 before:2024-06-01   arrival dates (before excludes)
  larger:100k smaller:2M
  -TERM                not TERM
  TERM OR TERM         either

Matching is done by the server: substrings, case-insensitive.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			crit, err := mua.ParseQuery(strings.Join(args, " "))
			if err != nil {
				return err
			}
			return a.listMessages(f, f.folder, crit, limit)
		},
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "at most the newest N matches (0: all)")
	return cmd
}

func (a *app) mailReadCmd(f *mailFlags) *cobra.Command {
	var saveDir string
	var peek, raw bool
	cmd := &cobra.Command{
		Use:   "read ID [--save-attachments DIR]",
		Short: "Show a message: its text, decoded, and its attachments",
		Long: `read shows the message with UID ID of --folder: the main header fields,
the text/plain part (or the text of the HTML part when that is all there
is), decoded from its transfer encoding and charset, and the list of
attachments. --save-attachments writes them into DIR under safe names
(never outside DIR, never over an existing file). The message is marked
\Seen unless --peek.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			uid, err := mua.ParseUID(args[0])
			if err != nil {
				return err
			}
			return a.withIMAP(f, func(_ context.Context, _ *mua.Profile, s *mua.Session) error {
				m, err := s.Fetch(f.folder, uid, peek)
				if err != nil {
					return err
				}
				if saveDir != "" {
					if err := mua.SaveAttachments(m, saveDir); err != nil {
						return err
					}
				}
				switch {
				case raw && isTerminal(a.stdout):
					// As stored, but no escape sequence reaches the
					// terminal (redirected, the bytes are exact).
					_, err := io.WriteString(a.stdout, mua.Printable(strings.ReplaceAll(string(m.Raw), "\r\n", "\n")))
					return err
				case raw:
					_, err := a.stdout.Write(m.Raw)
					return err
				case f.json:
					return a.printJSON(m)
				}
				mua.WriteMessage(a.stdout, m)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&saveDir, "save-attachments", "", "save the attachments into this directory")
	cmd.Flags().BoolVar(&peek, "peek", false, "do not mark the message \\Seen")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the message as stored (RFC 5322)")
	return cmd
}

func (a *app) mailFoldersCmd(f *mailFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "folders",
		Short: "List the folders with their special use (\\Sent, \\Trash...) and counts",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withIMAP(f, func(_ context.Context, _ *mua.Profile, s *mua.Session) error {
				fs, err := s.Folders()
				if err != nil {
					return err
				}
				if f.json {
					return a.printJSON(fs)
				}
				mua.WriteFolders(a.stdout, fs)
				return nil
			})
		},
	}
}

func (a *app) mailWatchCmd(f *mailFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch [FOLDER]",
		Short: "Print each new message (UID, From, Subject) as it arrives (IMAP IDLE), until interrupted",
		Long: `watch waits in a folder (default --folder, INBOX) with IMAP IDLE and
prints a line for each message that arrives; with --json, one JSON object
per line. It says on stderr when it is waiting. Stop it with Ctrl-C or
SIGTERM.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			folder := f.folder
			if len(args) == 1 {
				folder = args[0]
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p, s, err := a.imapSession(ctx, f)
			if err != nil {
				return err
			}
			defer s.Close()
			enc := json.NewEncoder(a.stdout)
			enc.SetEscapeHTML(false)
			ready := func() {
				fmt.Fprintf(a.stderr, "watching %s on %s (Ctrl-C to stop)\n", mua.Printable(folder), p.IMAP.Addr())
			}
			return s.Watch(ctx, folder, ready, func(m mua.Summary) {
				if f.json {
					_ = enc.Encode(m)
				} else {
					mua.WriteSummary(a.stdout, m)
				}
			})
		},
	}
}

// --- filing ------------------------------------------------------------------

func (a *app) mailMvCmd(f *mailFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "mv ID FOLDER",
		Short: "Move messages (ID: 7, 3,5 or 3:7) of --folder to FOLDER",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			uids, err := mua.ParseUIDs(args[0])
			if err != nil {
				return err
			}
			return a.withIMAP(f, func(_ context.Context, _ *mua.Profile, s *mua.Session) error {
				if err := s.Move(f.folder, uids, args[1]); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "moved %s from %s to %s\n", uids, mua.Printable(f.folder), mua.Printable(args[1]))
				return nil
			})
		},
	}
}

func (a *app) mailRmCmd(f *mailFlags) *cobra.Command {
	var expunge bool
	cmd := &cobra.Command{
		Use:   "rm ID [--expunge]",
		Short: "Move messages to the Trash folder, or delete them for good with --expunge",
		Long: `rm moves messages (ID: 7, 3,5 or 3:7) of --folder to the Trash (the
\Trash folder, else one called Trash, created if need be). In the Trash
itself, or with --expunge, they are marked \Deleted and expunged: gone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			uids, err := mua.ParseUIDs(args[0])
			if err != nil {
				return err
			}
			return a.withIMAP(f, func(_ context.Context, _ *mua.Profile, s *mua.Session) error {
				to, err := s.Delete(f.folder, uids, expunge)
				if err != nil {
					return err
				}
				if to == "" {
					fmt.Fprintf(a.stderr, "expunged %s from %s\n", uids, mua.Printable(f.folder))
				} else {
					fmt.Fprintf(a.stderr, "moved %s from %s to %s\n", uids, mua.Printable(f.folder), mua.Printable(to))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&expunge, "expunge", false, "delete for good instead of moving to the Trash")
	return cmd
}

func (a *app) mailFlagCmd(f *mailFlags) *cobra.Command {
	var unset bool
	cmd := &cobra.Command{
		Use:   "flag ID [--unset] FLAG",
		Short: "Set or clear a flag: seen, answered, flagged, deleted, draft, or a $Keyword",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			uids, err := mua.ParseUIDs(args[0])
			if err != nil {
				return err
			}
			flag, err := mua.ParseFlag(args[1])
			if err != nil {
				return err
			}
			return a.withIMAP(f, func(_ context.Context, _ *mua.Profile, s *mua.Session) error {
				return s.Flag(f.folder, uids, flag, !unset)
			})
		},
	}
	cmd.Flags().BoolVar(&unset, "unset", false, "clear the flag instead of setting it")
	return cmd
}
