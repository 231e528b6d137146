package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"timeslots/internal/database"
)

// genRun is one generation through the server.
type genRun struct {
	Created  int
	Wall     time.Duration // as the client saw the request
	Reported time.Duration // durationMs in the payload
	PeakRSS  int64         // server's peak resident set during the request
}

// generateViaGraphQL calls generateSlots(daysAhead) on a running server and
// reads the server's peak RSS over the call.
func generateViaGraphQL(ctx context.Context, s *server, days int) (genRun, error) {
	pid := s.cmd.Process.Pid
	if err := resetPeakRSS(pid); err != nil {
		return genRun{}, fmt.Errorf("reset peak RSS: %w", err)
	}
	var out struct {
		GenerateSlots struct {
			Created    int `json:"created"`
			Skipped    int `json:"skipped"`
			DurationMs int `json:"durationMs"`
		} `json:"generateSlots"`
	}
	client := &http.Client{Timeout: 30 * time.Minute}
	start := time.Now()
	err := s.graphql(ctx, client, true,
		`mutation Generate($days: Int!) { generateSlots(input: {daysAhead: $days}) { created skipped durationMs } }`,
		map[string]any{"days": days}, &out)
	wall := time.Since(start)
	if err != nil {
		return genRun{}, fmt.Errorf("generateSlots: %w", err)
	}
	rss, err := peakRSS(pid)
	if err != nil {
		return genRun{}, err
	}
	return genRun{Created: out.GenerateSlots.Created, Wall: wall,
		Reported: time.Duration(out.GenerateSlots.DurationMs) * time.Millisecond, PeakRSS: rss}, nil
}

// genFigure is generation of one workload on PostgreSQL: ours against the
// COPY ceiling, medians over runs.
type genFigure struct {
	W        workload
	Runs     int
	Ours     time.Duration
	Reported time.Duration
	PeakRSS  int64 // the largest over the runs
	Copy     time.Duration
	OursCPU  cpuSplit // of the last run, per row
	CopyCPU  cpuSplit
}

func (g genFigure) oursRate() float64 { return float64(g.W.Slots()) / g.Ours.Seconds() }
func (g genFigure) copyRate() float64 { return float64(g.W.Slots()) / g.Copy.Seconds() }
func (g genFigure) ratio() float64    { return g.oursRate() / g.copyRate() }

// setupProviders empties the bench database and creates w's providers.
func setupProviders(ctx context.Context, b *benchDB, w workload, capacity int) (*dataset, error) {
	if err := b.emptySlots(ctx, true); err != nil {
		return nil, err
	}
	target, err := database.ParseURL(b.url)
	if err != nil {
		return nil, err
	}
	db, err := database.Open(ctx, target, database.Options{MaxOpenConns: 4})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return createProviders(ctx, db, w, capacity)
}

// measureGeneration runs, runs times: COPY of the dataset's rows into the
// freshly emptied table, then generateSlots through the server into the
// freshly emptied table; it leaves the last generation's slots in place.
//
// Each run has a server of its own, started just before, so its peak RSS
// is generation's footprint, not memory a long-lived process kept from
// earlier phases; above cliAbove slots a run is the one-shot CLI instead.
func measureGeneration(ctx context.Context, b *benchDB, bin string, env []string, ds *dataset, runs int) (genFigure, error) {
	want := ds.w.Slots()
	var ours, reported, copies []time.Duration
	fig := genFigure{W: ds.w, Runs: runs}
	for r := 0; r < runs; r++ {
		if err := b.emptySlots(ctx, false); err != nil {
			return fig, err
		}
		meter := startCPU(ctx, b, 0)
		n, d, err := copySlots(ctx, b, ds, sameDays)
		fig.CopyCPU = meter.finish(ctx, n, 0)
		if err != nil {
			return fig, fmt.Errorf("COPY: %w", err)
		}
		if n != want {
			return fig, fmt.Errorf("COPY wrote %d rows, the workload has %d", n, want)
		}
		copies = append(copies, d)
		if err := b.emptySlots(ctx, false); err != nil {
			return fig, err
		}
		g, cpu, err := generateOnce(ctx, b, bin, env, ds)
		fig.OursCPU = cpu
		if err != nil {
			return fig, err
		}
		if g.Created != want {
			return fig, fmt.Errorf("generateSlots created %d slots, the workload has %d", g.Created, want)
		}
		if n, err := b.count(ctx, "SELECT count(*) FROM time_slots"); err != nil || n != int64(want) {
			return fig, fmt.Errorf("after generation the table holds %d slots (%v), want %d", n, err, want)
		}
		ours, reported = append(ours, g.Wall), append(reported, g.Reported)
		fig.PeakRSS = max(fig.PeakRSS, g.PeakRSS)
		fmt.Printf("  run %d: generateSlots %s (%s in the server), COPY %s, peak RSS %s\n",
			r+1, secs(g.Wall), secs(g.Reported), secs(d), mib(g.PeakRSS))
	}
	fig.Ours, fig.Reported, fig.Copy = median(ours), median(reported), median(copies)
	return fig, nil
}

// sqliteFigure is the seed workload on the embedded default.
type sqliteFigure struct {
	W        workload
	Runs     int
	Ours     time.Duration
	Reported time.Duration
	PeakRSS  int64
}

// measureSQLite generates the seed workload through a server on a fresh
// SQLite file, runs times.
func measureSQLite(ctx context.Context, bin, dir string, runs int) (sqliteFigure, error) {
	w := seedWorkload()
	fig := sqliteFigure{W: w, Runs: runs}
	var ours, reported []time.Duration
	for r := 0; r < runs; r++ {
		url := "sqlite:" + filepath.Join(dir, fmt.Sprintf("seed-%d.db", r))
		target, err := database.ParseURL(url)
		if err != nil {
			return fig, err
		}
		db, err := database.Open(ctx, target, database.Options{})
		if err != nil {
			return fig, err
		}
		if _, err := db.Migrate(ctx); err != nil {
			db.Close()
			return fig, err
		}
		ds, err := createProviders(ctx, db, w, 1)
		db.Close()
		if err != nil {
			return fig, err
		}
		s, err := startServer(ctx, bin, url)
		if err != nil {
			return fig, err
		}
		g, err := generateViaGraphQL(ctx, s, ds.w.Days)
		s.stop()
		if err != nil {
			return fig, err
		}
		if g.Created != w.Slots() {
			return fig, fmt.Errorf("SQLite: generateSlots created %d slots, the workload has %d", g.Created, w.Slots())
		}
		ours, reported = append(ours, g.Wall), append(reported, g.Reported)
		fig.PeakRSS = max(fig.PeakRSS, g.PeakRSS)
		fmt.Printf("  run %d: generateSlots %s (%s in the server), peak RSS %s\n", r+1, secs(g.Wall), secs(g.Reported), mib(g.PeakRSS))
	}
	fig.Ours, fig.Reported = median(ours), median(reported)
	return fig, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// generateViaCLI runs the one-shot `timeslots generate --days N` against
// databaseURL: the operators' path. Its peak RSS is the command's VmHWM,
// read from /proc while it runs (the high-water mark only grows, so the
// last reading is the peak). Not getrusage: on Linux a child's ru_maxrss
// also carries the high-water mark of the address space it was started
// from, which for a Go parent is the parent's own (the bench's, 48–73 MiB
// late in a run), not the command's.
func generateViaCLI(ctx context.Context, bin, databaseURL string, days int) (genRun, error) {
	cmd := exec.CommandContext(ctx, bin, "generate", "--days", strconv.Itoa(days))
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL, "LOG_LEVEL=warn", "SEED_DEMO=false")
	var out bytes.Buffer
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return genRun{}, fmt.Errorf("timeslots generate: %w", err)
	}
	var rss int64
	sampled := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if n, err := peakRSS(cmd.Process.Pid); err == nil {
				rss = max(rss, n)
			}
			select {
			case <-exited:
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(exited)
	<-sampled
	if err != nil {
		return genRun{}, fmt.Errorf("timeslots generate: %v\n%s", err, out.Bytes())
	}
	var res struct {
		Created    int `json:"created"`
		DurationMs int `json:"durationMs"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return genRun{}, fmt.Errorf("timeslots generate printed %.200q: %w", out.Bytes(), err)
	}
	if rss == 0 {
		return genRun{}, errors.New("timeslots generate: no VmHWM could be read while it ran")
	}
	return genRun{Created: res.Created, Wall: wall, Reported: time.Duration(res.DurationMs) * time.Millisecond, PeakRSS: rss}, nil
}

// generateOnce runs one generation of the dataset's days through a fresh
// server's generateSlots, or the CLI above cliAbove slots, and measures
// the CPU it cost.
func generateOnce(ctx context.Context, b *benchDB, bin string, env []string, ds *dataset) (genRun, cpuSplit, error) {
	if ds.w.Slots() > cliAbove {
		meter := startCPU(ctx, b, 0)
		g, err := generateViaCLI(ctx, bin, b.url, ds.w.Days)
		return g, meter.finish(ctx, g.Created, 0), err
	}
	s, err := startServer(ctx, bin, b.url, env...)
	if err != nil {
		return genRun{}, cpuSplit{}, err
	}
	defer s.stop()
	// One read first, as a running server would have had: the pool's first
	// connection and the GraphQL handler are warm.
	if err := s.graphql(ctx, http.DefaultClient, false, `{ providers(first: 1) { edges { cursor } } }`, nil, nil); err != nil {
		return genRun{}, cpuSplit{}, fmt.Errorf("warm-up query: %w", err)
	}
	meter := startCPU(ctx, b, s.cmd.Process.Pid)
	g, err := generateViaGraphQL(ctx, s, ds.w.Days)
	return g, meter.finish(ctx, g.Created, 0), err
}

// cliAbove is the largest generation sent as one GraphQL request (-cli-above).
var cliAbove = 3_000_000
