package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"timeslots/internal/adminjson"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

// runCLI runs one subcommand through run and answers its output (standard
// error, then standard output: the logs, then the answer) and exit status.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code := runCLIStreams(t, env, args...)
	return stderr + stdout, code
}

// runCLIStreams runs one subcommand through run and answers its standard
// output, its standard error (with run's error last, as main prints it)
// and exit status.
func runCLIStreams(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"timeslots"}, args...), envOf(env), &out, &errOut)
	if err != nil {
		errOut.WriteString("timeslots: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), exitCode(err)
}

// lastJSON decodes the command's answer: the last JSON document of its
// output (log lines come before it).
func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	i := strings.LastIndex(out, "\n{\n")
	if i < 0 {
		i = strings.Index(out, "{\n")
	}
	if i < 0 {
		t.Fatalf("no JSON answer in:\n%s", out)
	}
	if err := json.Unmarshal([]byte(out[i:]), v); err != nil {
		t.Fatalf("answer: %v\n%s", err, out)
	}
}

func TestCLISubcommands(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"DATABASE_URL": dbtest.URL(t, d), "LOG_LEVEL": "info"}

			if out, code := runCLI(t, env, "migrate"); code != 0 {
				t.Fatalf("migrate: %d\n%s", code, out)
			}
			out, code := runCLI(t, env, "seed")
			var seeded struct {
				Seeded    bool `json:"seeded"`
				Providers int  `json:"providers"`
				Generate  struct {
					Created int `json:"created"`
				} `json:"generate"`
			}
			if lastJSON(t, out, &seeded); code != 0 || !seeded.Seeded || seeded.Providers != 7 || seeded.Generate.Created == 0 {
				t.Fatalf("seed: %d\n%s", code, out)
			}
			if out, _ := runCLI(t, env, "seed"); strings.Contains(out, `"seeded": true`) {
				t.Fatalf("a second seed must not seed again:\n%s", out)
			}

			out, code = runCLI(t, env, "generate", "--days", "10", "--providers", "1,2")
			// The same field names as the admin API's answer.
			var gen adminjson.Generate
			if lastJSON(t, out, &gen); code != 0 || gen.Providers != 2 || gen.Days != 10 || gen.Created == 0 ||
				!strings.Contains(out, `"durationMs"`) {
				t.Fatalf("generate: %d %+v\n%s", code, gen, out)
			}
			// The horizon follows demand up to GENERATE_MAX_DAYS_AHEAD (90):
			// without bookings no provider goes past --days.
			if gen.MaxDays == nil || *gen.MaxDays != 10 || gen.Extended == nil || *gen.Extended != 0 {
				t.Fatalf("generate without demand: maxDays %v, extended %v; want 10 and 0\n%s", gen.MaxDays, gen.Extended, out)
			}
			// A floor above the configured ceiling raises the ceiling
			// unless --max-days is given.
			out, code = runCLI(t, env, "generate", "--days", "120", "--providers", "3")
			gen = adminjson.Generate{}
			if lastJSON(t, out, &gen); code != 0 || gen.Days != 120 || gen.MaxDays == nil || *gen.MaxDays != 120 {
				t.Fatalf("generate --days 120: %d %+v\n%s", code, gen, out)
			}
			// Not a terminal: progress comes as log lines.
			if !strings.Contains(out, `"msg":"generate progress"`) {
				t.Errorf("generate without a terminal logs no progress:\n%s", out)
			}

			out, code = runCLI(t, env, "cleanup", "--days-old", "0")
			var clean map[string]any
			if lastJSON(t, out, &clean); code != 0 || clean["deleted"] == nil || clean["durationMs"] == nil {
				t.Fatalf("cleanup: %d %+v\n%s", code, clean, out)
			}

			out, code = runCLI(t, env, "stats")
			var st struct {
				adminjson.Stats
				Maintenance struct{ Jobs map[string]any } `json:"maintenance"`
			}
			if lastJSON(t, out, &st); code != 0 || st.Providers != 7 || st.TotalSlots == 0 || len(st.Maintenance.Jobs) != 2 {
				t.Fatalf("stats: %d %+v\n%s", code, st, out)
			}
			// No demand: every provider's horizon is GENERATE_DAYS_AHEAD.
			for _, u := range st.UtilizationByProvider {
				if u.HorizonDays != 30 || u.HorizonEnd == nil {
					t.Fatalf("stats: provider %d's horizon %d days to %v, want 30 days\n%s", u.Provider.ID, u.HorizonDays, u.HorizonEnd, out)
				}
			}
		})
	}
}

func TestCLIHelpAndExitCodes(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "sqlite:" + t.TempDir() + "/cli.db", "LOG_LEVEL": "warn"}
	for _, cmd := range []string{"serve", "migrate", "seed", "generate", "cleanup", "stats"} {
		out, code := runCLI(t, env, cmd, "--help")
		if code != 0 || !strings.Contains(out, "usage: timeslots") {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, out)
		}
	}
	if out, _ := runCLI(t, env, "generate", "--help"); !strings.Contains(out, "-days") || !strings.Contains(out, "-providers") {
		t.Errorf("generate --help does not describe its flags:\n%s", out)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"no command shows help", env, []string{"--help"}, 0},
		{"an unknown command is a usage error", env, []string{"frobnicate"}, 2},
		{"an unknown flag is a usage error", env, []string{"generate", "--weeks", "2"}, 2},
		{"a stray argument is a usage error", env, []string{"stats", "now"}, 2},
		{"serve takes no arguments", env, []string{"serve", "fast"}, 2},
		{"a malformed provider list is a usage error", env, []string{"generate", "--providers", "1,x"}, 2},
		{"days out of range is refused by the manager as bad input", env, []string{"generate", "--days", "0"}, 2},
		{"a ceiling under the floor is refused as bad input", env, []string{"generate", "--days", "10", "--max-days", "9"}, 2},
		{"a ceiling over 365 likewise", env, []string{"generate", "--max-days", "366"}, 2},
		{"days-old out of range likewise", env, []string{"cleanup", "--days-old", "-1"}, 2},
		{"an unreachable database is a failure", map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, []string{"stats"}, 1},
		{"invalid configuration is a failure", map[string]string{"GENERATE_SCHEDULE": "soon"}, []string{"stats"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, code := runCLI(t, tc.env, tc.args...); code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out)
			}
		})
	}
}

// On a terminal, the bar advances with the providers done.
func TestProgressBarOnATerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := progressSink{bar: newBar(&buf, "generate"), name: "generate"}
	for i := 1; i <= 4; i++ {
		p.generate(slots.GenerateProgress{ProvidersDone: i, ProvidersTotal: 4, Created: 100 * i})
	}
	p.done()
	if s := buf.String(); !strings.Contains(s, "400 created") || !strings.Contains(s, "100%") {
		t.Errorf("bar output %q, want the created count and 100%%", s)
	}
}

// Every one-shot command prints its JSON answer and nothing else on
// standard output, so scripts can pipe it to jq; the logs (at any level)
// go to standard error. Help asked for is standard output too; a refusal
// leaves standard output empty.
func TestOneShotCommandsPrintOnlyTheirAnswer(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"DATABASE_URL": dbtest.URL(t, d), "LOG_LEVEL": "debug"}
			for _, tc := range []struct {
				args []string
				want string // a field of the answer
			}{
				{[]string{"migrate"}, "applied"},
				{[]string{"seed"}, "seeded"},
				{[]string{"seed"}, "reason"}, // the database has providers now
				{[]string{"generate", "--days", "3"}, "created"},
				{[]string{"cleanup", "--days-old", "30"}, "deleted"},
				{[]string{"stats"}, "totalSlots"},
			} {
				stdout, stderr, code := runCLIStreams(t, env, tc.args...)
				if code != 0 {
					t.Fatalf("%v: exit %d\n%s", tc.args, code, stderr)
				}
				dec := json.NewDecoder(strings.NewReader(stdout))
				var answer map[string]any
				if err := dec.Decode(&answer); err != nil {
					t.Fatalf("%v: standard output is not a JSON answer: %v\n%q", tc.args, err, stdout)
				}
				if _, err := dec.Token(); err != io.EOF || !strings.HasSuffix(stdout, "}\n") {
					t.Errorf("%v: standard output holds more than its answer:\n%q", tc.args, stdout)
				}
				if _, ok := answer[tc.want]; !ok {
					t.Errorf("%v: the answer has no %q:\n%s", tc.args, tc.want, stdout)
				}
				if !strings.Contains(stderr, `"msg":"database ready"`) {
					t.Errorf("%v: the logs are not on standard error:\n%s", tc.args, stderr)
				}
				if tc.want == "reason" && answer["seeded"] != false {
					t.Errorf("a second seed answers %s, want seeded false and why", stdout)
				}
			}
			// jq's view: `timeslots stats | jq .totalSlots` is one number.
			stdout, _, _ := runCLIStreams(t, env, "stats")
			var st struct{ TotalSlots *int }
			if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.TotalSlots == nil || *st.TotalSlots == 0 {
				t.Errorf("stats: totalSlots %v (%v)", st.TotalSlots, err)
			}

			if stdout, stderr, code := runCLIStreams(t, env, "stats", "--help"); code != 0 || !strings.HasPrefix(stdout, "usage: timeslots stats") || stderr != "" {
				t.Errorf("stats --help: exit %d, stdout %q, stderr %q; want the usage on standard output only", code, stdout, stderr)
			}
			if stdout, stderr, code := runCLIStreams(t, env, "generate", "--weeks", "2"); code != 2 || stdout != "" || !strings.Contains(stderr, "-weeks") {
				t.Errorf("generate --weeks: exit %d, stdout %q, stderr %q; want a usage error on standard error only", code, stdout, stderr)
			}
		})
	}
}
