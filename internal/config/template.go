package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// templateHeader opens every file that [Template] writes.
const templateHeader = `# posthorn configuration, written by ` + "`posthorn init`" + `.
#
# Every option is shown with its default value; change what you need.
# Relative paths are relative to the directory of this file. Sizes are
# written like "512KiB", "50MiB" or "10MB"; durations like "30s" or "1h30m".
`

// commentWidth is the widest a comment line grows before it wraps.
const commentWidth = 78

// Template renders c as a complete TOML file with every option, each under
// its description: the file `posthorn init` writes. [Load] of the result
// gives back c when c is valid and normalised (see [Config.Validate]);
// relative paths in c are then resolved against the file's directory.
func Template(c Config) string {
	var b strings.Builder
	b.WriteString(templateHeader)
	writeTable(&b, nil, reflect.ValueOf(c))
	return b.String()
}

// writeTable writes the keys of the struct v, whose TOML key is path: first
// its plain values, then each nested struct as a [table] of its own.
func writeTable(b *strings.Builder, path toml.Key, v reflect.Value) {
	first := true
	for f, fv := range v.Fields() {
		if key, ok := fieldKey(f); ok && !isTable(f.Type) {
			// A blank line parts options, but not a table from its first.
			if !first || len(path) == 0 {
				b.WriteString("\n")
			}
			first = false
			writeComment(b, f.Tag.Get("comment"))
			fmt.Fprintf(b, "%s = %s\n", toml.Key{key}, tomlValue(fv))
		}
	}
	for f, fv := range v.Fields() {
		if key, ok := fieldKey(f); ok && isTable(f.Type) {
			sub := append(path[:len(path):len(path)], key)
			b.WriteString("\n")
			writeComment(b, f.Tag.Get("comment"))
			fmt.Fprintf(b, "[%s]\n", sub)
			writeTable(b, sub, fv)
		}
	}
}

// writeComment writes text as "# " lines, wrapped at words.
func writeComment(b *strings.Builder, text string) {
	line := "#"
	for _, word := range strings.Fields(text) {
		if line != "#" && len(line)+1+len(word) > commentWidth {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	if line != "#" {
		b.WriteString(line + "\n")
	}
}

// tomlValue renders v as a TOML value. A [fmt.Stringer] such as [Size] or
// [Duration] becomes a string, as its TOML decoder expects.
func tomlValue(v reflect.Value) string {
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return quote(s.String())
	}
	switch v.Kind() {
	case reflect.String:
		return quote(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = tomlValue(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	// Config uses no other kind; the round-trip test catches a new one.
	return quote(fmt.Sprint(v.Interface()))
}

// quote renders s as a TOML basic string, escaping quotes, backslashes and
// control characters (TOML 1.0 §String). Invalid UTF-8 becomes U+FFFD.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
