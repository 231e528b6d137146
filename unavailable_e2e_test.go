package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

// cappedRole makes a PostgreSQL role that may hold at most limit
// connections, with the rights the server needs on the (migrated) database
// of dbURL, and answers dbURL as that role. The role is dropped when the
// test ends, after the database.
func cappedRole(t *testing.T, dbURL string, limit int) string {
	t.Helper()
	ctx := context.Background()
	role := "ts_cap_" + strings.ToLower(rand.Text())
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, stmt := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN CONNECTION LIMIT %d", role, limit),
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", name, role),
		"GRANT USAGE ON SCHEMA public TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO " + role,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dbtest.PostgresURL(t))
		if err != nil {
			t.Logf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(ctx)
		for _, stmt := range []string{"DROP DATABASE IF EXISTS " + name + " WITH (FORCE)", "DROP ROLE IF EXISTS " + role} {
			if _, err := c.Exec(ctx, stmt); err != nil {
				t.Logf("%s: %v", stmt, err)
			}
		}
	})
	u.User = url.User(role)
	return u.String()
}

// A database that refuses the server's connections (a role capped at 5,
// two of which the change feed's listener and sender hold and one River's
// background work may hold, while the server's pool may open 16) is
// answered, to every one of many concurrent requests of each edge, with success or a coded 503 with
// Retry-After (UNAVAILABLE), never a 500; GraphQL errors carry
// extensions.code UNAVAILABLE.
func TestAConnectionCappedDatabaseAnswersUnavailable(t *testing.T) {
	t.Parallel()
	const token = "capped-admin-token-0123456789"
	dbURL := dbtest.URL(t, database.Postgres)
	db := openDatabase(t, dbURL)
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := slots.New(db).SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	srv := startServer(t, testEnv(t, database.Postgres, map[string]string{
		"DATABASE_URL": cappedRole(t, dbURL, 5), "DB_MAX_CONNS": "16", "SEED_DEMO": "false",
		"APP_ENV": "production", "ADMIN_TOKEN": token, "HOST": "127.0.0.1", "LOG_LEVEL": "warn",
	}))
	client := &http.Client{Timeout: time.Minute}
	// The slots to book: a listing may itself meet the cap (503), so it
	// is asked again until it is served.
	var page struct{ Data []struct{ ID int64 } }
	for deadline := time.Now().Add(time.Minute); ; {
		list, err := getAnswer(client, http.MethodGet, srv.URL+"/api/time-slots?limit=200", nil, nil)
		if err == nil && json.Unmarshal(list.Body, &page) == nil && len(page.Data) > 0 {
			break
		}
		if err == nil && list.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("slots: %v %v", list, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	type request struct {
		method, path, body string
		header             http.Header
	}
	gql := func(q string) request {
		b, _ := json.Marshal(map[string]string{"query": q})
		return request{http.MethodPost, "/graphql", string(b), http.Header{"Content-Type": {"application/json"}}}
	}
	kinds := []func(i int) request{
		func(i int) request { return request{http.MethodGet, "/api/time-slots?limit=50", "", nil} },
		func(i int) request {
			return request{http.MethodGet, "/api/admin/time-slots", "", http.Header{"Authorization": {"Bearer " + token}}}
		},
		func(i int) request { return gql(`{ timeSlots(first: 20) { nodes { id provider { name } } } }`) },
		func(i int) request {
			return gql(fmt.Sprintf(`mutation { bookSlot(input: {slotId: "%d", customer: "c%d"}) { booking { id } } }`,
				page.Data[i%len(page.Data)].ID, i))
		},
	}

	var ok, unavailable int
	for round := 0; round < 20 && (unavailable == 0 || ok == 0); round++ {
		var (
			mu      sync.Mutex
			wg      sync.WaitGroup
			answers []string
			start   = make(chan struct{})
		)
		for i := range 48 {
			req := kinds[i%len(kinds)](round*48 + i)
			wg.Go(func() {
				<-start
				a, err := getAnswer(client, req.method, srv.URL+req.path, req.header, strings.NewReader(req.body))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					answers = append(answers, "no answer: "+err.Error())
				case a.Status == http.StatusOK && (!strings.Contains(string(a.Body), `"errors"`) ||
					strings.Contains(string(a.Body), `"code":"SLOT_`)): // served, or a booking refused by a rule
					ok++
				case a.Status == http.StatusServiceUnavailable && a.Header.Get("Retry-After") != "" &&
					strings.Contains(string(a.Body), `"code":"UNAVAILABLE"`):
					unavailable++
				default:
					answers = append(answers, fmt.Sprintf("%s %s: %.400s (Retry-After %q)", req.method, req.path, a, a.Header.Get("Retry-After")))
				}
			})
		}
		close(start)
		wg.Wait()
		for _, a := range answers {
			t.Errorf("neither a success nor a coded 503: %s", a)
		}
		if t.Failed() {
			break
		}
	}
	t.Logf("%d successes, %d coded 503s", ok, unavailable)
	if ok == 0 || unavailable == 0 {
		t.Fatalf("%d successes and %d coded 503s: the test did not exercise both", ok, unavailable)
	}
	for _, line := range strings.Split(srv.Logs(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("logged at error level: %s", line)
		}
	}
}
