package models_test

import (
	"strings"
	"testing"

	"timeslots/internal/apperr"
	"timeslots/models"
)

func TestCheckText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, s string
		ok      bool
	}{
		{"plain text", "Ann Smith", true},
		{"accents and scripts", "Zoë 李小龍 📅", true},
		{"a written U+FFFD", "a\uFFFDb", true},
		{"exactly the limit", strings.Repeat("é", 10), true},
		{"empty (the caller's rule)", "", true},
		{"over the limit", strings.Repeat("a", 21), false},
		{"a NUL byte", "a\x00b", false},
		{"an invalid byte", "a\xffb", false},
		{"a truncated sequence", "a\xe2\x82", false},
		{"an overlong encoding", "\xc0\x80", false},
		{"a surrogate half", "\xed\xb0\x80", false},
		{"a newline", "a\nb", false},
		{"DEL", "a\x7f", false},
		{"a C1 control", "a\u009b", false},
	} {
		err := models.CheckText("customer", tc.s, 20)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != "customer" || !strings.Contains(e.Message, "customer") {
				t.Errorf("%s: %v, want BAD_USER_INPUT naming customer", tc.name, err)
			}
		}
	}
}
