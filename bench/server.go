package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildServer compiles the real server binary (the module root's main
// package) into dir, so every figure is taken from what production runs.
func buildServer(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "timeslots")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot answers the directory of the timeslots module: the main
// module when the bench runs from the repository's root, the replaced
// requirement when it runs inside bench/ (its own module).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "timeslots").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m timeslots (run the bench inside the repository): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// server is one running server process on a 127.0.0.1 port it chose.
type server struct {
	cmd   *exec.Cmd
	base  string // http://127.0.0.1:PORT
	token string // ADMIN_TOKEN
	done  chan struct{}

	mu   sync.Mutex
	tail []string // last lines of its output, for error messages
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startServer starts bin serving databaseURL in production mode with the
// rate limiter, the scheduler and the demo seed off, on a free port, and
// waits until its /readyz answers 200 (its logs, the listening line among
// them, are at warn level here). extra environment variables override the
// defaults.
func startServer(ctx context.Context, bin, databaseURL string, extra ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{token: randomToken(), done: make(chan struct{}), base: "http://127.0.0.1:" + port}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+databaseURL,
		"APP_ENV=production",
		"HOST=127.0.0.1",
		"PORT="+port,
		// No load balancer to drain: stop at once.
		"SHUTDOWN_DRAIN=0s",
		"ADMIN_TOKEN="+s.token,
		"RATE_LIMIT_RPS=0",
		"SCHEDULER_ENABLED=false",
		"SEED_DEMO=false",
		"LOG_LEVEL=warn",
		// The webhook phase's receiver listens on 127.0.0.1.
		"WEBHOOK_ALLOW_PRIVATE=true",
		// Generating 1M+ slots in one request takes longer than the
		// default per-request timeout meant for API calls.
		"REQUEST_TIMEOUT=30m",
		// The read cache is measured on its own (cache.go); every other
		// figure is the database's work, as before it existed.
		"CACHE_MAX_BYTES=0",
	)
	cmd.Env = append(cmd.Env, extra...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	s.cmd = cmd
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.tail = append(s.tail, line)
			if len(s.tail) > 40 {
				s.tail = s.tail[len(s.tail)-40:]
			}
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	for deadline := time.Now().Add(60 * time.Second); !s.ready(ctx); {
		select {
		case <-s.done:
			return nil, fmt.Errorf("server exited before it was ready:\n%s", s.output())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("server was not ready within 60s:\n%s", s.output())
		}
	}
	return s, nil
}

// ready reports whether the server's /readyz answers 200.
func (s *server) ready(ctx context.Context) bool {
	// A server that accepts the connection but never answers must not
	// hold the start-up loop (and its 60 s limit) forever.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freePort answers a TCP port of 127.0.0.1 that nothing listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// stop asks the server to shut down gracefully and waits for it.
func (s *server) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// resetPeakRSS makes the kernel forget the process's peak resident set
// (Linux: writing 5 to clear_refs), so the next reading is this phase's.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// peakRSS answers the process's peak resident set (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// gqlResponse is a GraphQL answer as the wire carries it.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// graphql posts one operation (as admin when admin is set) and decodes
// data into out; GraphQL errors become a Go error naming their codes.
func (s *server) graphql(ctx context.Context, client *http.Client, admin bool, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if admin {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("graphql: HTTP %d, undecodable body %.200q", resp.StatusCode, raw)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("graphql: %s (%v)", r.Errors[0].Message, r.Errors[0].Extensions["code"])
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("graphql: HTTP %d", resp.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(r.Data, out)
	}
	return nil
}
