package scalar_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"timeslots/graph/scalar"
	"timeslots/internal/apperr"
)

// argCtx is the context gqlgen gives an input value: its path names it.
func argCtx(path ...string) context.Context {
	ctx := context.Background()
	for _, p := range path {
		ctx = graphql.WithPathContext(ctx, graphql.NewPathWithField(p))
	}
	return ctx
}

func marshal(t *testing.T, m graphql.ContextMarshaler) string {
	t.Helper()
	var b bytes.Buffer
	if err := m.MarshalGQLContext(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestScalarsNameTheArgumentAtFault(t *testing.T) {
	ctx := argCtx("input", "slotId")
	for _, v := range []any{"abc", "0", "-4", "1.5", true, "99999999999999999999", nil} {
		_, err := scalar.UnmarshalID(ctx, v)
		e, ok := apperr.As(err)
		if !ok || e.Code != apperr.BadUserInput || e.Field != "input.slotId" || !strings.HasPrefix(e.Message, "input.slotId ") {
			t.Errorf("ID %#v: %v", v, err)
		}
	}
	for _, v := range []any{"42", json.Number("42"), 42, int64(42)} {
		if id, err := scalar.UnmarshalID(ctx, v); err != nil || id != 42 {
			t.Errorf("ID %#v: %d, %v", v, id, err)
		}
	}
	if _, err := scalar.UnmarshalTime(argCtx("filter", "from"), "yesterday"); !strings.HasPrefix(apperr.ErrorMessage(err), "filter.from must be") {
		t.Errorf("bad time: %v", err)
	}
	if _, err := scalar.UnmarshalDate(argCtx("filter", "date"), "2025-02-30"); !strings.HasPrefix(apperr.ErrorMessage(err), "filter.date must be") {
		t.Errorf("bad date: %v", err)
	}
}

// Time and Date take the same years, 0001 to 9999, and refuse the others
// with the same coded error, naming the argument; an offset that moves an
// instant across either end counts.
func TestTimeAndDateTakeTheSameYears(t *testing.T) {
	for _, c := range []struct {
		time, date string
		ok         bool
	}{
		{"0000-06-01T00:00:00Z", "0000-06-01", false},
		{"0001-01-01T00:00:00Z", "0001-01-01", true},
		{"0001-01-01T00:30:00+01:00", "", false}, // 0000-12-31T23:30:00Z
		{"9999-12-31T23:59:59Z", "9999-12-31", true},
		{"9999-12-31T23:00:00-02:00", "", false}, // 10000-01-01T01:00:00Z
	} {
		_, err := scalar.UnmarshalTime(argCtx("filter", "from"), c.time)
		e, coded := apperr.As(err)
		if c.ok != (err == nil) || !c.ok && (!coded || e.Code != apperr.BadUserInput || e.Field != "filter.from" ||
			!strings.HasPrefix(e.Message, "filter.from must be")) {
			t.Errorf("Time %s: %v, want ok=%v or BAD_USER_INPUT naming filter.from", c.time, err, c.ok)
		}
		if c.date == "" {
			continue
		}
		_, err = scalar.UnmarshalDate(argCtx("filter", "date"), c.date)
		e, coded = apperr.As(err)
		if c.ok != (err == nil) || !c.ok && (!coded || e.Code != apperr.BadUserInput || e.Field != "filter.date") {
			t.Errorf("Date %s: %v, want ok=%v or BAD_USER_INPUT naming filter.date", c.date, err, c.ok)
		}
	}
}

func TestTimeIsAnsweredInUTC(t *testing.T) {
	in, err := scalar.UnmarshalTime(context.Background(), "2025-09-09T09:30:00+02:00")
	if err != nil {
		t.Fatal(err)
	}
	if got := marshal(t, scalar.MarshalTime(in.In(time.FixedZone("x", 5*3600)))); got != `"2025-09-09T07:30:00Z"` {
		t.Fatalf("marshalled %s", got)
	}
	if got := marshal(t, scalar.MarshalID(36)); got != `"36"` {
		t.Fatalf("ID marshalled %s", got)
	}
}

// FuzzUnmarshalID: any input is either a positive id that marshals back to
// itself, or BAD_USER_INPUT; never a panic or another error.
func FuzzUnmarshalID(f *testing.F) {
	for _, s := range []string{"1", "42", "0", "-1", "abc", "9223372036854775807", "9223372036854775808", " 7", "0x10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := scalar.UnmarshalID(argCtx("id"), s)
		if err != nil {
			if apperr.ErrorCode(err) != apperr.BadUserInput || len(apperr.ErrorMessage(err)) > 200 {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if id < 1 {
			t.Fatalf("%q accepted as %d", s, id)
		}
		back, err := scalar.UnmarshalID(argCtx("id"), strconv.FormatInt(id, 10))
		if err != nil || back != id {
			t.Fatalf("%q: %d does not round-trip: %d, %v", s, id, back, err)
		}
	})
}
