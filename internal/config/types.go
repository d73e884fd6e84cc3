package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a number of bytes. In TOML it is written as an integer (bytes) or
// as a string with a unit: "50MiB", "512 KiB", "10MB", "1000B". KiB, MiB and
// GiB are powers of 1024; kB, MB and GB powers of 1000. Units ignore case.
type Size int64

// ParseSize parses a size such as "50MiB", "100kB", "1000" or "1000 B".
// Negative numbers, fractions, unknown units and sizes beyond int64 are errors.
func ParseSize(text string) (Size, error) {
	s := strings.TrimSpace(text)
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	num, unit := s[:digits], strings.TrimSpace(s[digits:])
	switch {
	case strings.HasPrefix(s, "-"):
		return 0, fmt.Errorf("invalid size %q: must not be negative", text)
	case num == "":
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes with an optional unit, such as \"50MiB\"", text)
	case strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ","):
		return 0, fmt.Errorf("invalid size %q: fractions are not allowed; use a smaller unit", text)
	}
	mult, ok := unitBytes(unit)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, kB, MB, GB, KiB, MiB or GiB)", text, unit)
	}
	// num is all digits, so ParseInt can only fail with a range error.
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", text)
	}
	return Size(n * mult), nil
}

// unitBytes returns the number of bytes in one unit; the empty unit is bytes.
func unitBytes(unit string) (int64, bool) {
	switch strings.ToLower(unit) {
	case "", "b":
		return 1, true
	case "kb":
		return 1e3, true
	case "mb":
		return 1e6, true
	case "gb":
		return 1e9, true
	case "kib":
		return 1 << 10, true
	case "mib":
		return 1 << 20, true
	case "gib":
		return 1 << 30, true
	}
	return 0, false
}

// UnmarshalTOML implements the BurntSushi toml.Unmarshaler interface: v is a
// TOML integer (bytes) or a string accepted by [ParseSize].
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("invalid size %d: must not be negative", v)
		}
		*s = Size(v)
		return nil
	case string:
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		*s = n
		return nil
	case float64:
		return fmt.Errorf("invalid size %v: want a whole number of bytes, not a float", v)
	}
	return fmt.Errorf("invalid size %v: want an integer number of bytes or a string such as \"50MiB\"", v)
}

// String renders s in the shortest exact binary unit ("50MiB", "1536KiB"),
// or as a plain number of bytes ("1000") when no unit divides it.
func (s Size) String() string {
	units := []struct {
		name  string
		shift uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}}
	for _, u := range units {
		if s != 0 && s%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(s>>u.shift), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Duration is a [time.Duration] written in TOML as a string such as "30s",
// "5m", "1h30m", "250ms" or "5d" (days). Negative durations are rejected.
type Duration time.Duration

// UnmarshalText parses text with [time.ParseDuration], plus a "d" (day)
// unit as a whole number of days ("5d"), which queue lifetimes need.
func (d *Duration) UnmarshalText(text []byte) error {
	if days, ok := strings.CutSuffix(string(text), "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return fmt.Errorf("invalid duration %q: days must be a whole number from 0 to 3650", text)
		}
		*d = Duration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%w (write a number with a unit, such as \"30s\", \"5m\" or \"1h30m\")", err)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText renders d as [Duration.String] does.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// String renders d like [time.Duration.String] without trailing zero
// components: "5m" rather than "5m0s", "1h30m", "2h", "250ms".
func (d Duration) String() string {
	if d >= Duration(24*time.Hour) && d%Duration(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/Duration(24*time.Hour)), 10) + "d"
	}
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// D returns d as a [time.Duration].
func (d Duration) D() time.Duration {
	return time.Duration(d)
}
