package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/slots"
	"timeslots/models"
)

// TestTrickledBodyIsRefusedWhenTheDeadlinePasses: a production server with
// REQUEST_TIMEOUT=300ms sent a body one byte at a time, far slower than
// that, answers 408 DEADLINE_EXCEEDED in the endpoint's error shape and
// closes the connection, without waiting for the rest of the body; nothing
// panics and no stack reaches the log.
func TestTrickledBodyIsRefusedWhenTheDeadlinePasses(t *testing.T) {
	const token = "trickle-admin-token-0123456789abcdef"
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"APP_ENV": "production", "ADMIN_TOKEN": token, "REQUEST_TIMEOUT": "300ms"}))
	u, _ := url.Parse(srv.URL)
	for _, c := range []struct{ name, path, body string }{
		{"GraphQL", "/graphql", `{"query":"{ __typename }","pad":"` + strings.Repeat("x", 600) + `"}`},
		{"REST", "/api/admin/time-slots", `{"daysAhead": 1, "pad": "` + strings.Repeat("x", 600) + `"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
				c.path, u.Host, token, len(c.body)); err != nil {
				t.Fatal(err)
			}
			// One byte every 50 ms: the whole body would take over 30 s.
			stop := make(chan struct{})
			trickled := make(chan int, 1)
			go func() {
				n := 0
				defer func() { trickled <- n }()
				for ; n < len(c.body); n++ {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					if _, err := conn.Write([]byte{c.body[n]}); err != nil {
						return
					}
				}
			}()
			_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			close(stop)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer resp.Body.Close()
			if sent := <-trickled; sent >= len(c.body) {
				t.Fatalf("the answer came only after the whole body (%d bytes)", sent)
			}
			var body struct {
				Error  struct{ Code string } `json:"error"`
				Errors []struct {
					Extensions struct{ Code string } `json:"extensions"`
				} `json:"errors"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			code := body.Error.Code
			if c.path == "/graphql" && len(body.Errors) == 1 {
				code = body.Errors[0].Extensions.Code
			}
			if resp.StatusCode != http.StatusRequestTimeout || code != "DEADLINE_EXCEEDED" || !resp.Close {
				t.Fatalf("HTTP %d, code %q, close %v; want 408 DEADLINE_EXCEEDED and the connection closed", resp.StatusCode, code, resp.Close)
			}
		})
	}
	// The server goes on answering.
	if res := postGraphQL(t, srv.URL, `{ __typename }`, nil, nil); res.Status != http.StatusOK {
		t.Fatalf("after the trickled bodies: %s", res.answer)
	}
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(srv.Logs(), bad) {
			t.Errorf("the log has %q:\n%s", bad, srv.Logs())
		}
	}
}

// TestCleanupOutlivingTheRequestTimeoutSaysWhatItDeleted: on both
// databases, a cleanup through REST and GraphQL of far more old slots than
// fit in a 100 ms REQUEST_TIMEOUT answers 504 DEADLINE_EXCEEDED with the
// number of slots it deleted, which is exactly the number gone; run again,
// the cleanups finish the work.
func TestCleanupOutlivingTheRequestTimeoutSaysWhatItDeleted(t *testing.T) {
	for _, d := range []database.Dialect{database.SQLite, database.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			const token = "cleanup-admin-token-0123456789abcdef"
			srv := startServer(t, testEnv(t, d, map[string]string{
				"APP_ENV": "production", "ADMIN_TOKEN": token, "REQUEST_TIMEOUT": "100ms"}))
			db := openDatabase(t, srv.DatabaseURL)
			// 20 providers' five-minute slots of ten days that ended weeks ago.
			past := time.Now().UTC().AddDate(0, 0, -30).Truncate(24 * time.Hour).Add(-time.Minute)
			m := slots.New(db, slots.WithClock(func() time.Time { return past }))
			var hours []models.WorkingHours
			for _, wd := range models.AllWeekdays {
				hours = append(hours, models.WorkingHours{Weekday: wd, Start: "00:00", End: "24:00"})
			}
			for i := range 20 {
				if _, err := m.CreateProvider(t.Context(), models.ProviderInput{Name: fmt.Sprintf("Old %d", i), TimeZone: "UTC", SlotMinutes: 5, WorkingHours: hours}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := m.Generate(t.Context(), slots.GenerateInput{DaysAhead: 11}); err != nil {
				t.Fatal(err)
			}
			ended := func() int {
				var n int64
				if err := db.Model(&models.TimeSlot{}).Where("end_time < ?", time.Now()).Count(&n).Error; err != nil {
					t.Fatal(err)
				}
				return int(n)
			}
			total := ended()
			if total != 20*10*288 {
				t.Fatalf("%d old slots, want %d", total, 20*10*288)
			}

			deleted := map[string]int{}
			// REST first, then GraphQL, each on what the other left.
			before := ended()
			a, err := getAnswer(nil, http.MethodDelete, srv.URL+"/api/admin/time-slots?daysOld=0", bearer(token, false), nil)
			if err != nil {
				t.Fatal(err)
			}
			var rest struct {
				Error struct {
					Code    string
					Deleted *int
				} `json:"error"`
			}
			_ = json.Unmarshal(a.Body, &rest)
			if a.Status != http.StatusGatewayTimeout || rest.Error.Code != "DEADLINE_EXCEEDED" || rest.Error.Deleted == nil {
				t.Fatalf("REST cleanup of %d slots in 100 ms: %s", before, a)
			}
			deleted["REST"] = *rest.Error.Deleted
			if gone := before - ended(); gone != deleted["REST"] {
				t.Fatalf("REST says %d deleted, %d are gone", deleted["REST"], gone)
			}

			before = ended()
			res := postGraphQL(t, srv.URL, `mutation { cleanupSlots(input: {daysOld: 0}) { deleted } }`, nil, bearer(token, false))
			if res.Status != http.StatusGatewayTimeout || res.Code() != "DEADLINE_EXCEEDED" {
				t.Fatalf("GraphQL cleanup of %d slots in 100 ms: %s", before, res.answer)
			}
			n, ok := res.Errors[0].Extensions["deleted"].(float64)
			if gone := before - ended(); !ok || int(n) != gone {
				t.Fatalf("GraphQL says %v deleted, %d are gone", res.Errors[0].Extensions, gone)
			}
			for _, bad := range []string{"panic", "goroutine ", `"level":"ERROR"`} {
				if strings.Contains(srv.Logs(), bad) {
					t.Errorf("the log has %q:\n%s", bad, srv.Logs())
				}
			}
		})
	}
}
