package mua

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// ParseQuery turns the search syntax of `posthorn mail search` into IMAP
// SEARCH criteria (RFC 9051 §6.4.4). Terms are ANDed:
//
//	word              TEXT word (header or body contains it)
//	"two words"       a phrase, anywhere a word may stand
//	from:X to:X cc:X bcc:X subject:X body:X text:X
//	is:seen is:unseen is:flagged is:unflagged is:answered
//	is:unanswered is:deleted is:draft
//	since:2024-05-01  before:2024-06-01 (dates of arrival; before excludes)
//	larger:100k  smaller:2M
//	-TERM             not TERM
//	TERM OR TERM      either
//
// Matching is the server's: substring, case-insensitive for ASCII.
func ParseQuery(q string) (*imap.SearchCriteria, error) {
	toks, err := tokenize(q)
	if err != nil {
		return nil, err
	}
	var terms []imap.SearchCriteria
	for i := 0; i < len(toks); i++ {
		if toks[i] == "OR" {
			if len(terms) == 0 || i+1 >= len(toks) {
				return nil, errors.New("OR needs a term on each side")
			}
			i++
			right, err := parseTerm(toks[i])
			if err != nil {
				return nil, err
			}
			left := terms[len(terms)-1]
			terms[len(terms)-1] = imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{left, *right}}}
			continue
		}
		c, err := parseTerm(toks[i])
		if err != nil {
			return nil, err
		}
		terms = append(terms, *c)
	}
	if len(terms) == 0 {
		return nil, errors.New("empty search")
	}
	out := &imap.SearchCriteria{}
	for i := range terms {
		out.And(&terms[i])
	}
	return out, nil
}

// tokenize splits at spaces outside double quotes and removes the quotes.
func tokenize(q string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	quoted, have := false, false
	for _, r := range q {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case (r == ' ' || r == '\t' || r == '\n') && !quoted:
			if have {
				toks = append(toks, cur.String())
			}
			cur.Reset()
			have = false
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if quoted {
		return nil, errors.New("unbalanced double quote")
	}
	if have {
		toks = append(toks, cur.String())
	}
	return toks, nil
}

func parseTerm(tok string) (*imap.SearchCriteria, error) {
	if rest, ok := strings.CutPrefix(tok, "-"); ok && rest != "" {
		c, err := parseTerm(rest)
		if err != nil {
			return nil, err
		}
		return &imap.SearchCriteria{Not: []imap.SearchCriteria{*c}}, nil
	}
	key, val, ok := strings.Cut(tok, ":")
	if !ok || !isQueryKey(strings.ToLower(key)) {
		return &imap.SearchCriteria{Text: []string{tok}}, nil
	}
	key = strings.ToLower(key)
	if val == "" {
		return nil, fmt.Errorf("%s: needs a value", key)
	}
	c := &imap.SearchCriteria{}
	switch key {
	case "from", "to", "cc", "bcc", "subject":
		c.Header = []imap.SearchCriteriaHeaderField{{Key: headerName[key], Value: val}}
	case "body":
		c.Body = []string{val}
	case "text":
		c.Text = []string{val}
	case "is":
		f, not, ok := isFlag(strings.ToLower(val))
		if !ok {
			return nil, fmt.Errorf("is:%s: want seen, unseen, flagged, unflagged, answered, unanswered, deleted or draft", val)
		}
		if not {
			c.NotFlag = []imap.Flag{f}
		} else {
			c.Flag = []imap.Flag{f}
		}
	case "since", "before":
		d, err := time.Parse("2006-01-02", val)
		if err != nil {
			return nil, fmt.Errorf("%s:%s: want a date as 2024-05-31", key, val)
		}
		if key == "since" {
			c.Since = d
		} else {
			c.Before = d
		}
	case "larger", "smaller":
		n, err := parseSize(val)
		if err != nil {
			return nil, fmt.Errorf("%s:%s: %w", key, val, err)
		}
		if key == "larger" {
			c.Larger = n
		} else {
			c.Smaller = n
		}
	}
	return c, nil
}

var headerName = map[string]string{"from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc", "subject": "Subject"}

func isQueryKey(k string) bool {
	switch k {
	case "from", "to", "cc", "bcc", "subject", "body", "text", "is", "since", "before", "larger", "smaller":
		return true
	}
	return false
}

// isFlag maps is:VALUE to a flag and whether the flag must be absent.
func isFlag(v string) (f imap.Flag, not, ok bool) {
	switch v {
	case "seen", "read":
		return imap.FlagSeen, false, true
	case "unseen", "unread", "new":
		return imap.FlagSeen, true, true
	case "flagged", "starred":
		return imap.FlagFlagged, false, true
	case "unflagged":
		return imap.FlagFlagged, true, true
	case "answered", "replied":
		return imap.FlagAnswered, false, true
	case "unanswered":
		return imap.FlagAnswered, true, true
	case "deleted":
		return imap.FlagDeleted, false, true
	case "draft":
		return imap.FlagDraft, false, true
	}
	return "", false, false
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(strings.ToLower(s), "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(strings.ToLower(s), "m"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a size in bytes, or with k or M")
	}
	return n * mult, nil
}
