package imap

// command is one IMAP command: its handler and the states it runs in.
type command struct {
	fn     func(c *conn, tag string, s *scanner) error
	states []state
}

func (cmd command) allowed(st state) bool {
	for _, s := range cmd.states {
		if s == st {
			return true
		}
	}
	return false
}

var (
	anyState   = []state{stateNotAuth, stateAuth, stateSelected}
	notAuth    = []state{stateNotAuth}
	authed     = []state{stateAuth, stateSelected}
	inSelected = []state{stateSelected}
)

// commands is the dispatch table (RFC 9051 §6).
var commands = map[string]command{
	"CAPABILITY":   {(*conn).cmdCapability, anyState},
	"NOOP":         {(*conn).cmdNoop, anyState},
	"LOGOUT":       {(*conn).cmdLogout, anyState},
	"ID":           {(*conn).cmdID, anyState},
	"STARTTLS":     {(*conn).cmdStartTLS, notAuth},
	"LOGIN":        {(*conn).cmdLogin, notAuth},
	"AUTHENTICATE": {(*conn).cmdAuthenticate, notAuth},
	"ENABLE":       {(*conn).cmdEnable, authed},
	"SELECT":       {(*conn).cmdSelect, authed},
	"EXAMINE":      {(*conn).cmdExamine, authed},
	"CREATE":       {(*conn).cmdCreate, authed},
	"DELETE":       {(*conn).cmdDelete, authed},
	"RENAME":       {(*conn).cmdRename, authed},
	"SUBSCRIBE":    {(*conn).cmdSubscribe, authed},
	"UNSUBSCRIBE":  {(*conn).cmdUnsubscribe, authed},
	"LIST":         {(*conn).cmdList, authed},
	"LSUB":         {(*conn).cmdLsub, authed},
	"NAMESPACE":    {(*conn).cmdNamespace, authed},
	"STATUS":       {(*conn).cmdStatus, authed},
	"APPEND":       {(*conn).cmdAppend, authed},
	"IDLE":         {(*conn).cmdIdle, authed},
	"COMPRESS":     {(*conn).cmdCompress, authed},
	"GETQUOTA":     {(*conn).cmdGetQuota, authed},
	"GETQUOTAROOT": {(*conn).cmdGetQuotaRoot, authed},
	"CHECK":        {(*conn).cmdCheck, inSelected},
	"CLOSE":        {(*conn).cmdClose, inSelected},
	"UNSELECT":     {(*conn).cmdUnselect, inSelected},
	"EXPUNGE":      {(*conn).cmdExpunge, inSelected},
	"UID EXPUNGE":  {(*conn).cmdUIDExpunge, inSelected},
	"SEARCH":       {func(c *conn, t string, s *scanner) error { return c.cmdSearch(t, s, false) }, inSelected},
	"UID SEARCH":   {func(c *conn, t string, s *scanner) error { return c.cmdSearch(t, s, true) }, inSelected},
	"SORT":         {func(c *conn, t string, s *scanner) error { return c.cmdSort(t, s, false) }, inSelected},
	"UID SORT":     {func(c *conn, t string, s *scanner) error { return c.cmdSort(t, s, true) }, inSelected},
	"THREAD":       {func(c *conn, t string, s *scanner) error { return c.cmdThread(t, s, false) }, inSelected},
	"UID THREAD":   {func(c *conn, t string, s *scanner) error { return c.cmdThread(t, s, true) }, inSelected},
	"FETCH":        {func(c *conn, t string, s *scanner) error { return c.cmdFetch(t, s, false) }, inSelected},
	"UID FETCH":    {func(c *conn, t string, s *scanner) error { return c.cmdFetch(t, s, true) }, inSelected},
	"STORE":        {func(c *conn, t string, s *scanner) error { return c.cmdStore(t, s, false) }, inSelected},
	"UID STORE":    {func(c *conn, t string, s *scanner) error { return c.cmdStore(t, s, true) }, inSelected},
	"COPY":         {func(c *conn, t string, s *scanner) error { return c.cmdCopy(t, s, false, false) }, inSelected},
	"UID COPY":     {func(c *conn, t string, s *scanner) error { return c.cmdCopy(t, s, true, false) }, inSelected},
	"MOVE":         {func(c *conn, t string, s *scanner) error { return c.cmdCopy(t, s, false, true) }, inSelected},
	"UID MOVE":     {func(c *conn, t string, s *scanner) error { return c.cmdCopy(t, s, true, true) }, inSelected},
}
