package graph_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/graph"
)

// The POST transport writes responses itself; clients must get the very
// bytes encoding/json gave them before, HTML escaping included.
func TestResponsesAreWrittenAsEncodingJSONWritesThem(t *testing.T) {
	t.Parallel()
	yes := true
	for _, tc := range []struct {
		name string
		resp graphql.Response
	}{
		{"data alone goes out as encoded", graphql.Response{Data: json.RawMessage(`{"timeSlots":{"edges":[{"cursor":"czE6MTo","node":{"id":"1"}}]}}`)}},
		{"HTML characters in data are escaped", graphql.Response{Data: json.RawMessage(`{"provider":{"name":"<b>Ann & Bob</b>"}}`)}},
		{"line and paragraph separators in data are escaped", graphql.Response{Data: json.RawMessage("{\"provider\":{\"name\":\"a\u2028b\u2029c – d\"}}")}},
		{"null data", graphql.Response{Data: json.RawMessage(`null`)}},
		{"no data", graphql.Response{Errors: gqlerror.List{{Message: "bad <input>"}}}},
		{"data with errors", graphql.Response{Data: json.RawMessage(`{"a":null}`), Errors: gqlerror.List{{Message: "x", Extensions: map[string]any{"code": "NOT_FOUND"}}}}},
		{"data with extensions", graphql.Response{Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{"cost": 3}}},
		{"an incremental part", graphql.Response{Data: json.RawMessage(`{"a":1}`), Label: "l", HasNext: &yes}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			graph.WriteJSON(&got, &tc.resp)
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("wrote\n  %s\nwant\n  %s", got.Bytes(), want)
			}
		})
	}
}
