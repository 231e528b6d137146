// Package scalar converts the custom GraphQL scalars (ID, Time, Date) to
// and from their Go types. Every parse error is BAD_USER_INPUT and names the
// argument it came in (such as "input.slotId"), read from gqlgen's path
// context, so a client learns which value was wrong.
package scalar

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"timeslots/internal/apperr"
	"timeslots/models"
)

// The marshalers below run for every scalar of a response (a 20-slot page
// has a hundred), so each builds its JSON string in one small buffer.

// MarshalID writes an int64 id as a GraphQL ID (a JSON string).
func MarshalID(id int64) graphql.ContextMarshaler {
	return graphql.ContextWriterFunc(func(_ context.Context, w io.Writer) error {
		var buf [24]byte
		_, err := w.Write(AppendID(buf[:0], id))
		return err
	})
}

// AppendID appends the JSON of id as MarshalID writes it.
func AppendID(b []byte, id int64) []byte {
	return append(strconv.AppendInt(append(b, '"'), id, 10), '"')
}

// UnmarshalID reads a GraphQL ID, sent as a string or an integer, as a
// positive int64.
func UnmarshalID(ctx context.Context, v any) (int64, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = string(v)
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	default:
		name := Argument(ctx)
		return 0, apperr.Invalid(name, "%s must be an ID such as \"42\"", name)
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		name := Argument(ctx)
		return 0, apperr.Invalid(name, "%s must be an ID such as \"42\", got %s", name, quote(s))
	}
	return id, nil
}

// MarshalTime writes an instant in RFC 3339, always in UTC with a Z.
func MarshalTime(t time.Time) graphql.ContextMarshaler {
	return graphql.ContextWriterFunc(func(_ context.Context, w io.Writer) error {
		var buf [48]byte
		_, err := w.Write(AppendTime(buf[:0], t))
		return err
	})
}

// AppendTime appends the JSON of t as MarshalTime writes it.
func AppendTime(b []byte, t time.Time) []byte {
	return append(t.UTC().AppendFormat(append(b, '"'), time.RFC3339), '"')
}

// UnmarshalTime reads an RFC 3339 instant with any offset, in the years
// the Date scalar takes (models.ParseInstant).
func UnmarshalTime(ctx context.Context, v any) (time.Time, error) {
	s, _ := v.(string)
	return models.ParseInstant(Argument(ctx), s)
}

// MarshalDate writes a calendar date as YYYY-MM-DD.
func MarshalDate(d models.Date) graphql.ContextMarshaler {
	return graphql.ContextWriterFunc(func(_ context.Context, w io.Writer) error {
		var buf [24]byte
		_, err := w.Write(AppendDate(buf[:0], d))
		return err
	})
}

// AppendDate appends the JSON of d as MarshalDate writes it.
func AppendDate(b []byte, d models.Date) []byte { return strconv.AppendQuote(b, string(d)) }

// UnmarshalDate reads a YYYY-MM-DD calendar date.
func UnmarshalDate(ctx context.Context, v any) (models.Date, error) {
	s, _ := v.(string)
	return models.ParseDate(Argument(ctx), s)
}

// Argument answers the dotted path of the argument being read, such as
// "id", "input.slotId" or "filter.providerIds[2]".
func Argument(ctx context.Context) string {
	var parts []string
	for pc := graphql.GetPathContext(ctx); pc != nil; pc = pc.Parent {
		switch {
		case pc.Index != nil:
			parts = append(parts, fmt.Sprintf("[%d]", *pc.Index))
		case pc.Field != nil:
			parts = append(parts, "."+*pc.Field)
		}
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString(parts[i])
	}
	name := strings.TrimPrefix(b.String(), ".")
	if name == "" {
		return "argument"
	}
	return name
}

// quote shows a bad value back to its sender, cut short so an error never
// echoes a large input.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
