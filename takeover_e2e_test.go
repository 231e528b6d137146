package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"timeslots/internal/dbtest"
	"timeslots/internal/jobs"
	"timeslots/models"
)

// buildBinary builds the program into a temporary directory and answers
// its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "timeslots")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is the real binary running, as an operator starts it.
type process struct {
	cmd    *exec.Cmd
	out    *outputBuffer
	exited chan error
}

// startBinary starts bin with env on top of the test's environment and
// answers it once it listens; it is killed when the test ends.
func startBinary(t *testing.T, bin string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	p := &process{cmd: cmd, out: newOutputBuffer(), exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-p.out.ready:
	case err := <-p.exited:
		t.Fatalf("the binary stopped before listening: %v\n%s", err, p.out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the binary did not start:\n%s", p.out.String())
	}
	return p
}

// A replica killed (SIGKILL) in the middle of a scheduled generation leaves
// its run "running" under a lease nobody renews; once the lease lapses, a
// replica started after it records the dead run as interrupted, takes the
// tick over as attempt 2 and generates every slot, none twice.
func TestAKilledReplicasGenerationIsTakenOverAndCompleted(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbURL := dbtest.URL(t, d)
			db := openDatabase(t, dbURL)
			tick := longGeneration(t, db, 5) // 73,000 slots; killed at its first batch
			env := []string{
				"PORT=0", "DATABASE_URL=" + dbURL, "SEED_DEMO=false", "RATE_LIMIT_RPS=0", "LOG_LEVEL=info",
				"SCHEDULER_ENABLED=true", "GENERATE_DAYS_AHEAD=365", "JOB_LEASE=2s",
			}
			attempts := func() []models.JobRun {
				var runs []models.JobRun
				if err := db.Where("job = ? AND tick = ?", jobs.GenerateJob, tick).Order("attempt").Find(&runs).Error; err != nil {
					t.Fatal(err)
				}
				return runs
			}
			countSlots := func() int64 {
				var n int64
				if err := db.Model(&models.TimeSlot{}).Count(&n).Error; err != nil {
					t.Fatal(err)
				}
				return n
			}

			first := startBinary(t, bin, env...)
			for deadline := time.Now().Add(60 * time.Second); countSlots() == 0; {
				if time.Now().After(deadline) {
					t.Fatalf("the first replica generated nothing within 60s\n%s", first.out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-first.exited
			atKill := countSlots()
			runs := attempts()
			if len(runs) != 1 || runs[0].Outcome != models.JobRunning {
				t.Fatalf("after the kill the tick's runs are %+v, want one left running (the generation ended before the kill)", runs)
			}
			killedInstance := runs[0].Instance

			second := startBinary(t, bin, env...)
			for deadline := time.Now().Add(90 * time.Second); ; {
				runs = attempts()
				if n := len(runs); n > 1 && runs[n-1].Outcome != models.JobRunning {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the tick was not taken over and finished within 90s: %+v\n%s", runs, second.out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(runs) != 2 || runs[0].Outcome != models.JobInterrupted || runs[0].Instance != killedInstance ||
				runs[1].Attempt != 2 || runs[1].Outcome != models.JobSucceeded || runs[1].Instance != fmt.Sprintf("%s:%d", hostname(t), second.cmd.Process.Pid) {
				t.Fatalf("the tick's runs are %+v, want attempt 1 interrupted (%s) and attempt 2 succeeded by the second replica", runs, killedInstance)
			}
			var figures struct{ Created, Skipped int }
			if err := json.Unmarshal([]byte(runs[1].Details), &figures); err != nil {
				t.Fatal(err)
			}
			total := countSlots()
			if int64(figures.Created+figures.Skipped) != total || figures.Created == 0 || int64(figures.Skipped) < atKill {
				t.Errorf("attempt 2 created %d and found %d of %d slots (%d were there at the kill); want every slot of the plan",
					figures.Created, figures.Skipped, total, atKill)
			}
			var duplicates int64
			if err := db.Raw(`SELECT count(*) FROM (SELECT provider_id, start_time FROM time_slots
				GROUP BY provider_id, start_time HAVING count(*) > 1) d`).Scan(&duplicates).Error; err != nil {
				t.Fatal(err)
			}
			if duplicates != 0 {
				t.Errorf("%d slots exist twice", duplicates)
			}
			t.Logf("%d of %d slots generated when the first replica was killed; attempt 2 created the other %d", atKill, total, figures.Created)

			if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := <-second.exited; err != nil {
				t.Errorf("the second replica's exit: %v", err)
			}
		})
	}
}

// hostname is the host part of this machine's instance names.
func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
