package managesieve

import (
	"errors"
)

// name reads SP and a script name and validates it (RFC 5804 §1.6).
// SETACTIVE alone allows the empty name (RFC 5804 §2.8).
func (a *args) name(allowEmpty bool) (string, bool) {
	if !a.space() {
		return "", false
	}
	// UTF-8 takes at most four octets a character.
	s, ok := a.str(4*int64(a.c.s.opts.MaxNameLength), errStringTooLong)
	if !ok {
		return "", false
	}
	if s == "" && allowEmpty {
		return s, true
	}
	if why := validName(s, a.c.s.opts.MaxNameLength); why != "" {
		return "", a.fail(&failure{text: why})
	}
	return s, true
}

// script reads SP and a script of at most MaxScriptSize octets; a larger
// literal is discarded and answered NO (QUOTA/MAXSIZE).
func (a *args) script() (string, bool) {
	if !a.space() {
		return "", false
	}
	return a.str(a.c.s.opts.MaxScriptSize, errScriptTooLarge)
}

// cmdHaveSpace: HAVESPACE name size (RFC 5804 §2.5).
func (c *conn) cmdHaveSpace(a *args) {
	name, _ := a.name(false)
	size, _ := a.number()
	if !a.end() {
		return
	}
	if size > c.s.opts.MaxScriptSize {
		c.reply(errScriptTooLarge)
		return
	}
	if err := c.scripts.HaveSpace(c.ctx, name, size); err != nil {
		c.scriptFailed("havespace", err)
		return
	}
	c.ok("", "Putscript would succeed")
}

// cmdPutScript: PUTSCRIPT name script (RFC 5804 §2.6). The backend
// compiles first; a script that does not compile is answered with NO and
// the error, line number included.
func (c *conn) cmdPutScript(a *args) {
	name, _ := a.name(false)
	content, _ := a.script()
	if !a.end() {
		return
	}
	if err := c.scripts.Put(c.ctx, name, content); err != nil {
		c.scriptFailed("putscript", err)
		return
	}
	c.log.Info("managesieve putscript", "script", name, "octets", len(content))
	c.ok("", "Putscript completed")
}

// cmdListScripts: every name as a string, the active one followed by
// ACTIVE (RFC 5804 §2.7).
func (c *conn) cmdListScripts(a *args) {
	if !a.end() {
		return
	}
	list, err := c.scripts.List(c.ctx)
	if err != nil {
		c.scriptFailed("listscripts", err)
		return
	}
	for _, s := range list {
		line := appendString(nil, s.Name)
		if s.Active {
			line = append(line, " ACTIVE"...)
		}
		_, _ = c.bw.Write(append(line, "\r\n"...))
	}
	c.ok("", "Listscripts completed")
}

// cmdSetActive: SETACTIVE name, or "" for none (RFC 5804 §2.8).
func (c *conn) cmdSetActive(a *args) {
	name, _ := a.name(true)
	if !a.end() {
		return
	}
	if err := c.scripts.SetActive(c.ctx, name); err != nil {
		c.scriptFailed("setactive", err)
		return
	}
	c.log.Info("managesieve setactive", "script", name)
	c.ok("", "Setactive completed")
}

// cmdGetScript: the content as a literal, then OK (RFC 5804 §2.9).
func (c *conn) cmdGetScript(a *args) {
	name, _ := a.name(false)
	if !a.end() {
		return
	}
	content, err := c.scripts.Get(c.ctx, name)
	if err != nil {
		c.scriptFailed("getscript", err)
		return
	}
	c.literal(content)
	c.ok("", "Getscript completed")
}

// cmdDeleteScript: DELETESCRIPT name; the active script stays (RFC 5804
// §2.10: NO (ACTIVE)).
func (c *conn) cmdDeleteScript(a *args) {
	name, _ := a.name(false)
	if !a.end() {
		return
	}
	if err := c.scripts.Delete(c.ctx, name); err != nil {
		c.scriptFailed("deletescript", err)
		return
	}
	c.log.Info("managesieve deletescript", "script", name)
	c.ok("", "Deletescript completed")
}

// cmdRenameScript: RENAMESCRIPT old new (RFC 5804 §2.11).
func (c *conn) cmdRenameScript(a *args) {
	oldName, _ := a.name(false)
	newName, _ := a.name(false)
	if !a.end() {
		return
	}
	if err := c.scripts.Rename(c.ctx, oldName, newName); err != nil {
		c.scriptFailed("renamescript", err)
		return
	}
	c.log.Info("managesieve renamescript", "script", oldName, "to", newName)
	c.ok("", "Renamescript completed")
}

// cmdCheckScript: CHECKSCRIPT script, compiled and not stored (RFC 5804
// §2.12).
func (c *conn) cmdCheckScript(a *args) {
	content, _ := a.script()
	if !a.end() {
		return
	}
	if err := c.scripts.Check(c.ctx, content); err != nil {
		c.scriptFailed("checkscript", err)
		return
	}
	c.ok("", "Script is valid")
}

// scriptFailed answers a backend error with its response code. A broken
// script's error goes to the client as it is: it is for the user.
func (c *conn) scriptFailed(op string, err error) {
	var ce *CheckError
	switch {
	case errors.As(err, &ce):
		c.reply(&failure{text: ce.Error()})
	case errors.Is(err, ErrNoScript):
		c.reply(errNoScript)
	case errors.Is(err, ErrActive):
		c.reply(errActive)
	case errors.Is(err, ErrExists):
		c.reply(errExists)
	case errors.Is(err, ErrQuota):
		c.reply(errQuota)
	case errors.Is(err, ErrTooManyScripts):
		c.reply(errMaxScripts)
	case errors.Is(err, ErrTooLarge):
		c.reply(errScriptTooLarge)
	default:
		c.log.Error("managesieve "+op, "err", err)
		c.reply(errBackend)
	}
}
