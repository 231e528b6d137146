package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileReads starts a server built with the benchpprof tag and records a
// CPU profile of it under each read load (and answers the top of each), so
// the README can say where CPU goes per request. The measured figures
// always come from the production build; this is a separate pass.
func profileReads(ctx context.Context, root, tmp, dir string, b *benchDB, ds *dataset, o *options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(tmp, "timeslots-pprof")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "benchpprof", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags benchpprof: %v\n%s", err, out)
	}
	s, err := startServer(ctx, bin, b.url, "PPROF_ADDR=127.0.0.1:0")
	if err != nil {
		return err
	}
	defer s.stop()
	var pprofBase string
	for _, line := range strings.Split(s.output(), "\n") {
		if rest, ok := strings.CutPrefix(line, "pprof listening on "); ok {
			pprofBase = strings.TrimSpace(rest)
		}
	}
	if pprofBase == "" {
		return fmt.Errorf("the benchpprof server printed no pprof address")
	}
	secs := max(2, int(o.scalingDur/time.Second))
	for _, api := range []readAPI{graphqlRead, restRead} {
		file := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "").Replace(strings.ToLower(api.Name))+".pprof")
		errc := make(chan error, 1)
		go func() {
			time.Sleep(o.warmup + 500*time.Millisecond)
			errc <- fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", pprofBase, secs), file)
		}()
		l, err := readLoad(ctx, s, ds, api, o, time.Duration(secs)*time.Second+time.Second)
		if err != nil {
			return err
		}
		if err := <-errc; err != nil {
			return err
		}
		top, _ := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=30", bin, file).Output()
		fmt.Printf("-- CPU profile of the server under %s (%s req/s): %s\n%s\n", api.Name, rate(l.RPS), file, top)
	}
	return nil
}

func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
