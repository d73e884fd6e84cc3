package smtp

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		utf8 bool
		want []Param
	}{
		{"empty", "", false, nil},
		{"spaces only", "   ", false, nil},
		{"one keyword", "SMTPUTF8", false, []Param{{Key: "SMTPUTF8"}}},
		{"key upper-cased", "size=100", false, []Param{{Key: "SIZE", Value: "100", HasValue: true}}},
		{"value case kept", "BODY=8bitMIME", false, []Param{{Key: "BODY", Value: "8bitMIME", HasValue: true}}},
		{"several", "SIZE=100 BODY=8BITMIME SMTPUTF8", false, []Param{
			{Key: "SIZE", Value: "100", HasValue: true},
			{Key: "BODY", Value: "8BITMIME", HasValue: true},
			{Key: "SMTPUTF8"},
		}},
		{"many spaces", "  A=1   B  ", false, []Param{{Key: "A", Value: "1", HasValue: true}, {Key: "B"}}},
		{"keyword with hyphen", "X-FOO-=bar", false, []Param{{Key: "X-FOO-", Value: "bar", HasValue: true}}},
		{"digit keyword", "1X", false, []Param{{Key: "1X"}}},
		{"xtext value", "ENVID=a+2Bb", false, []Param{{Key: "ENVID", Value: "a+2Bb", HasValue: true}}},
		{"orcpt value", "ORCPT=rfc822;a+40b.example", false, []Param{{Key: "ORCPT", Value: "rfc822;a+40b.example", HasValue: true}}},
		{"value edge chars", "A=!<>~", false, []Param{{Key: "A", Value: "!<>~", HasValue: true}}},
		{"utf8 value", "ORCPT=utf-8;用户@例子.广告", true, []Param{{Key: "ORCPT", Value: "utf-8;用户@例子.广告", HasValue: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseParams(tt.in, tt.utf8)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseParams(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseParamsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		utf8 bool
	}{
		{"empty value", "SIZE=", false},
		{"only equals", "=", false},
		{"empty key", "=1", false},
		{"leading hyphen key", "-X=1", false},
		{"bad key char", "SI_ZE=1", false},
		{"dot key", "A.B", false},
		{"equals in value", "A=b=c", false},
		{"duplicate", "SIZE=1 SIZE=2", false},
		{"duplicate case", "size=1 SIZE=2", false},
		{"duplicate keyword", "SMTPUTF8 smtputf8", false},
		{"tab separator", "A=1\tB=2", false},
		{"cr", "A=1\r", false},
		{"lf", "A=1\nMAIL", false},
		{"crlf", "A=1\r\nRCPT TO:<x@y.example>", false},
		{"nul", "A=\x00", false},
		{"del", "A=\x7f", false},
		{"nul key", "A\x00=1", false},
		{"utf8 without option", "A=ü", false},
		{"utf8 key", "Ü=1", true},
		{"invalid utf8", "A=\xff", true},
		{"c1 control", "A=\u0085", true},
		{"line separator", "A=\u2028", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseParams(tt.in, tt.utf8)
			if !errors.Is(err, ErrParamSyntax) {
				t.Errorf("ParseParams(%q) = %+v, %v; want ErrParamSyntax", tt.in, got, err)
			}
		})
	}
}
