package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

// startupCounts opens the database behind databaseURL as a second client
// would and answers its providers, its slots and the providers that have slots.
func startupCounts(t *testing.T, databaseURL string) (providers, slotCount, withSlots int64) {
	t.Helper()
	target, err := database.ParseURL(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(context.Background(), target, database.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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

// startupGet answers the status and JSON "status" field of GET base+path.
func startupGet(t *testing.T, base, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp.StatusCode, body.Status
}

// startupRun starts run as main would, waits for its "listening on" line,
// and answers the base URL and a stop function that cancels the context and
// answers run's result.
func startupRun(t *testing.T, env map[string]string) (string, func() error) {
	t.Helper()
	out := &outputBuffer{ready: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"timeslots"}, func(k string) string { return env[k] }, out)
	}()
	select {
	case base := <-out.ready:
		return base, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("run returned %v before listening\n%s", err, out.String())
		return "", nil
	}
}

func TestStartupMigratesSeedsServesAndStopsOnBothDatabases(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"PORT": "0", "DATABASE_URL": dbtest.URL(t, d), "SCHEDULER_ENABLED": "false"}
			base, stop := startupRun(t, env)
			if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") || strings.HasSuffix(base, ":3000") {
				t.Fatalf("listening on %s, want 127.0.0.1 on the port the system chose", base)
			}
			if code, status := startupGet(t, base, "/healthz"); code != http.StatusOK || status != "ok" {
				t.Fatalf("/healthz: %d %q", code, status)
			}
			if code, status := startupGet(t, base, "/readyz"); code != http.StatusOK || status != "ready" {
				t.Fatalf("/readyz: %d %q", code, status)
			}
			providers, slotCount, withSlots := startupCounts(t, env["DATABASE_URL"])
			if providers != int64(len(slots.DemoProviders())) || providers != 7 || withSlots != 7 || slotCount < 7*slots.DemoDays {
				t.Fatalf("after start-up: %d providers, %d slots, %d providers with slots; want the 7 demo providers with slots",
					providers, slotCount, withSlots)
			}
			if err := stop(); err != nil {
				t.Fatalf("run after cancel: %v, want nil", err)
			}
			if _, err := http.Get(base + "/healthz"); err == nil {
				t.Fatal("the server still answers after run returned")
			}

			// A restart on the same database migrates nothing and seeds nothing.
			base, stop = startupRun(t, env)
			if code, _ := startupGet(t, base, "/readyz"); code != http.StatusOK {
				t.Fatalf("/readyz after restart: %d", code)
			}
			if err := stop(); err != nil {
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
		if err := run(ctx, []string{"timeslots"}, func(k string) string { return map[string]string{"PORT": "0"}[k] }, os.Stdout); err != nil {
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
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var base string
	var seen strings.Builder
	for base == "" && lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
		if m := listeningLine.FindStringSubmatch(lines.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		_ = cmd.Wait()
		t.Fatalf("the program never said where it listens:\n%s%s", seen.String(), stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }() // keep the child's output flowing

	if code, status := startupGet(t, base, "/healthz"); code != http.StatusOK || status != "ok" {
		t.Fatalf("/healthz: %d %q", code, status)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the program did not stop cleanly on interrupt: %v\n%s", err, stderr.String())
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
