package config

import (
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// fieldKey returns the TOML key of a struct field: its toml tag, or its Go
// name when the tag gives none. ok is false for fields TOML does not see.
func fieldKey(f reflect.StructField) (key string, ok bool) {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if !f.IsExported() || name == "-" {
		return "", false
	}
	if name == "" {
		name = f.Name
	}
	return name, true
}

// isTable reports whether a field of type t is written as a TOML table.
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct
}

// keysOf returns the TOML keys of struct type t, in field order.
func keysOf(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if k, ok := fieldKey(f); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// fieldType finds the field of struct type t with key name. exact is false
// when it matches only by ignoring case, as the decoder allows.
func fieldType(t reflect.Type, name string) (ft reflect.Type, exact, found bool) {
	for f := range t.Fields() {
		k, ok := fieldKey(f)
		switch {
		case ok && k == name:
			return f.Type, true, true
		case ok && strings.EqualFold(k, name):
			ft, found = f.Type, true
		}
	}
	return ft, false, found
}

// tableAt returns the struct type that key path names within [Config].
func tableAt(path toml.Key) (reflect.Type, bool) {
	t := reflect.TypeFor[Config]()
	for _, piece := range path {
		ft, exact, _ := fieldType(t, piece)
		if !exact || !isTable(ft) {
			return nil, false
		}
		t = ft
	}
	return t, true
}

// folded reports whether k reaches a field only by ignoring the case of some
// piece. The decoder accepts "Hostname" for "hostname"; Load does not, so
// that two spellings of one key cannot both be set.
func folded(k toml.Key) bool {
	t := reflect.TypeFor[Config]()
	for _, piece := range k {
		if !isTable(t) {
			return false
		}
		ft, exact, found := fieldType(t, piece)
		if !found {
			return false
		}
		if !exact {
			return true
		}
		t = ft
	}
	return false
}

// suggest returns the known key closest to the unknown key k, as a dotted
// key, or "" when none is close enough to be a likely typo.
func suggest(k toml.Key) string {
	parent := k[:len(k)-1]
	t, ok := tableAt(parent)
	if !ok {
		return ""
	}
	last := strings.ToLower(k[len(k)-1])
	// Allow two edits, or one in short keys where two make anything similar.
	best, bestDist := "", 3
	if len(last) <= 3 {
		bestDist = 2
	}
	for _, cand := range keysOf(t) {
		if d := distance(last, cand); d < bestDist {
			best, bestDist = cand, d
		}
	}
	if best == "" {
		return ""
	}
	return append(parent[:len(parent):len(parent)], best).String()
}

// distance is the optimal string alignment distance between a and b: the
// number of byte insertions, deletions, substitutions and transpositions of
// neighbours that turn a into b.
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
