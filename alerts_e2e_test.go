package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
)

// promtool runs Prometheus' promtool; without it the test is skipped
// locally but fails in CI, where .ci/run installs it.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("promtool is not installed (apt-get install prometheus); CI runs this test")
		}
		t.Fatalf("promtool is required in CI: %v", err)
	}
	return path
}

// ruleMetric finds the metric names in the rules' expressions: every name
// of ours or of the pool's, but not the recorded names (level:name:op).
var ruleMetric = regexp.MustCompile(`(?:^|[^:\w])((?:timeslots|go_sql)_[a-z_]+)\b`)

// A real server's /metrics, after traffic that makes every family appear,
// passes promtool check metrics, and every metric the alerting rules read
// is one the server exports.
func TestRulesAndLiveMetricsAgree(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"SEED_DEMO": "true", "SCHEDULER_ENABLED": "true", "GENERATE_SCHEDULE": "@every 1s", "GENERATE_DAYS_AHEAD": "2",
		"RATE_LIMIT_RPS": "1", "RATE_LIMIT_BURST": "1",
	}))
	if a, err := getAnswer(nil, http.MethodGet, srv.URL+"/readyz", nil, nil); err != nil || a.Status != http.StatusOK {
		t.Fatalf("/readyz: %v %s", err, a)
	}
	page := postGraphQL(t, srv.URL, `{ timeSlots(first: 1) { nodes { id } } }`, nil, nil)
	var slotPage struct {
		TimeSlots struct{ Nodes []struct{ ID string } }
	}
	page.Decode(t, &slotPage)
	if len(slotPage.TimeSlots.Nodes) != 1 {
		t.Fatalf("slot page: %s", page.Body)
	}
	// The limit of one request a second refuses this one (429), or the
	// booking is counted; either way both families appear.
	book := fmt.Sprintf(`mutation { bookSlot(input: {slotId: "%s", customer: "ann"}) { booking { id } } }`, slotPage.TimeSlots.Nodes[0].ID)
	for i := 0; i < 10; i++ {
		postGraphQL(t, srv.URL, book, nil, nil)
		text := scrape(t, srv.URL)
		if strings.Contains(text, "timeslots_bookings_total{") && strings.Contains(text, `status="429"`) {
			break
		}
		time.Sleep(time.Second)
	}
	var text string
	eventually(t, "a generation run by the scheduler", 30*time.Second, func() bool {
		text = scrape(t, srv.URL)
		return strings.Contains(text, "timeslots_job_due_timestamp_seconds{") &&
			strings.Contains(text, "timeslots_job_run_duration_seconds_count{")
	})

	families := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			families[strings.Fields(rest)[0]] = true
		}
	}
	rules, err := filepath.Glob("deploy/prometheus/*.rules.yml")
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	t.Run("the rules read exported metrics", func(t *testing.T) {
		for _, file := range rules {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(raw), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "#") {
					continue
				}
				for _, m := range ruleMetric.FindAllStringSubmatch(line, -1) {
					name := m[1]
					family := name
					for _, suffix := range []string{"_bucket", "_count", "_sum"} {
						if f, ok := strings.CutSuffix(name, suffix); ok && families[f] {
							family = f
						}
					}
					if !families[family] {
						t.Errorf("%s reads %s, which /metrics does not export", file, name)
					}
				}
			}
		}
	})
	t.Run("promtool check metrics", func(t *testing.T) {
		cmd := exec.Command(promtool(t), "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		// promtool answers 3 for lint findings only; each must be one of
		// the accepted findings, which README explains.
		lint := err == nil || exit.ExitCode() == 3
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line = strings.TrimSpace(line); line != "" && acceptedLint[line] == "" {
				lint = false
				t.Errorf("promtool check metrics: %s", line)
			}
		}
		if !lint {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

// acceptedLint holds the findings of promtool check metrics that stay, with
// the reason (README, section Alerts, says it too).
var acceptedLint = map[string]string{
	`timeslots_provider_horizon_days use base unit "seconds" instead of "days"`:        horizonDays,
	`timeslots_provider_horizon_target_days use base unit "seconds" instead of "days"`: horizonDays,
}

const horizonDays = "a horizon counts a provider's local calendar dates, not a duration: across a DST change no number of seconds says it"
