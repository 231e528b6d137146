package models

import (
	"unicode"
	"unicode/utf8"

	"timeslots/internal/apperr"
)

// MaxTimeZoneLength bounds a time zone name as input; the longest IANA
// name is about 30 bytes.
const MaxTimeZoneLength = 64

// CheckText is the one check of a text input that the server stores, or
// compares with what it stored (names, customer ids, idempotency keys,
// references), whichever edge it came through: at most max bytes, valid
// UTF-8 and no control characters. PostgreSQL refuses a NUL byte or
// invalid UTF-8 in text (SQLSTATE 22021) where SQLite would store it, so
// without this check the same input would be a server error on one
// database and stored bytes on the other. The error is BAD_USER_INPUT
// naming field, and never repeats the input. Whether the text may be empty
// is the caller's rule.
func CheckText(field, s string, max int) error {
	if len(s) > max {
		return apperr.Invalid(field, "%s must be at most %d bytes", field, max)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !validAt(s, i):
			return apperr.Invalid(field, "%s must be valid UTF-8 text (invalid byte at offset %d)", field, i)
		case r == 0:
			return apperr.Invalid(field, "%s must not contain a NUL character (at offset %d)", field, i)
		case unicode.IsControl(r):
			return apperr.Invalid(field, "%s must not contain control characters (U+%04X at offset %d)", field, r, i)
		}
	}
	return nil
}

// validAt reports whether the U+FFFD that ranging over s gave at i is
// really written there, rather than standing for an invalid byte.
func validAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 3
}
