package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

// startupCounts opens the database behind databaseURL as a second client
// would and answers its providers, its slots and the providers that have slots.
func startupCounts(t *testing.T, databaseURL string) (providers, slotCount, withSlots int64) {
	t.Helper()
	db := openDatabase(t, databaseURL)
	for q, dst := range map[string]*int64{
		"SELECT COUNT(*) FROM providers":                     &providers,
		"SELECT COUNT(*) FROM time_slots":                    &slotCount,
		"SELECT COUNT(DISTINCT provider_id) FROM time_slots": &withSlots,
	} {
		if err := db.Raw(q).Scan(dst).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return providers, slotCount, withSlots
}

// statusField answers the "status" field of a health answer's JSON body,
// "" when the body has none.
func statusField(a answer) string {
	var body struct{ Status string }
	_ = json.Unmarshal(a.Body, &body)
	return body.Status
}

func TestStartupMigratesSeedsServesAndStopsOnBothDatabases(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"PORT": "0", "DATABASE_URL": dbtest.URL(t, d), "SCHEDULER_ENABLED": "false"}
			srv := startServer(t, env)
			base := srv.URL
			if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") || strings.HasSuffix(base, ":3000") {
				t.Fatalf("listening on %s, want 127.0.0.1 on the port the system chose", base)
			}
			for _, h := range []struct{ path, status string }{{"/healthz", "ok"}, {"/readyz", "ready"}} {
				a, err := getAnswer(nil, http.MethodGet, base+h.path, nil, nil)
				if err != nil || a.Status != http.StatusOK || statusField(a) != h.status {
					t.Fatalf("%s: %v %s; want 200 with status %q", h.path, err, a, h.status)
				}
			}
			providers, slotCount, withSlots := startupCounts(t, env["DATABASE_URL"])
			if providers != int64(len(slots.DemoProviders())) || providers != 7 || withSlots != 7 || slotCount < 7*slots.DemoDays {
				t.Fatalf("after start-up: %d providers, %d slots, %d providers with slots; want the 7 demo providers with slots",
					providers, slotCount, withSlots)
			}
			if err := srv.Stop(); err != nil {
				t.Fatalf("run after cancel: %v, want nil", err)
			}
			if _, err := getAnswer(nil, http.MethodGet, base+"/healthz", nil, nil); err == nil {
				t.Fatal("the server still answers after run returned")
			}

			// A restart on the same database migrates nothing and seeds nothing.
			srv = startServer(t, env)
			if a, err := getAnswer(nil, http.MethodGet, srv.URL+"/readyz", nil, nil); err != nil || a.Status != http.StatusOK || statusField(a) != "ready" {
				t.Fatalf("/readyz after restart: %v %s", err, a)
			}
			if err := srv.Stop(); err != nil {
				t.Fatalf("second run after cancel: %v", err)
			}
			p2, s2, _ := startupCounts(t, env["DATABASE_URL"])
			if p2 != providers || s2 != slotCount {
				t.Fatalf("restart changed the data: %d providers, %d slots; before %d, %d", p2, s2, providers, slotCount)
			}
		})
	}
}

// TestStartupCreatesDataTimeslotsDBInTheWorkingDirectory runs the program
// as `go run .` would on a fresh clone: in a directory of its own, with no
// configuration. Changing the working directory would disturb the tests
// running beside this one, so the program runs in a child process (this
// test binary again), stopped with an interrupt as a terminal would.
func TestStartupCreatesDataTimeslotsDBInTheWorkingDirectory(t *testing.T) {
	if os.Getenv("TIMESLOTS_STARTUP_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		// PORT 0 is the only setting: 3000 may be taken on a test machine.
		if err := run(ctx, []string{"timeslots"}, func(k string) string { return map[string]string{"PORT": "0"}[k] }, os.Stdout, os.Stderr); err != nil {
			t.Fatalf("run: %v", err)
		}
		return
	}
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestStartupCreatesDataTimeslotsDBInTheWorkingDirectory$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TIMESLOTS_STARTUP_CHILD=1")
	// The logs, the listening line among them, are on standard error.
	out := newOutputBuffer()
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var base string
	select {
	case base = <-out.ready:
	case <-exited:
		t.Fatalf("the program never said where it listens:\n%s%s", stdout.String(), out.String())
	}

	if a, err := getAnswer(nil, http.MethodGet, base+"/healthz", nil, nil); err != nil || a.Status != http.StatusOK || statusField(a) != "ok" {
		t.Fatalf("/healthz: %v %s", err, a)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("the program did not stop cleanly on interrupt: %v\n%s", err, out.String())
	}
	file := filepath.Join(dir, "data", "timeslots.db")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no ./data/timeslots.db in the working directory: %v", err)
	}
	providers, slotCount, _ := startupCounts(t, "sqlite:"+file)
	if providers != 7 || slotCount == 0 {
		t.Fatalf("./data/timeslots.db holds %d providers and %d slots, want the seeded demo", providers, slotCount)
	}
}
