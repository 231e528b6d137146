package main

import (
	"bytes"
	"context"
	"regexp"
	"sync"
	"testing"
	"time"
)

// program is the real program started by run, in process, as main starts
// it; stop cancels its context as SIGTERM does and answers run's error.
type program struct {
	URL    string
	out    *programOutput
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// programOutput collects what the program writes, for the test to read
// while it runs.
type programOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *programOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *programOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

var listeningOn = regexp.MustCompile(`listening on (http://\S+)`)

// startProgram runs the server with env (on port 0) until the test ends or
// stop is called.
func startProgram(t *testing.T, env map[string]string) *program {
	t.Helper()
	vars := map[string]string{"PORT": "0", "SEED_DEMO": "false", "REQUEST_TIMEOUT": "2m"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{out: &programOutput{}, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, []string{"timeslots"}, envOf(vars), p.out) }()
	t.Cleanup(func() { _ = p.stop() })
	for deadline := time.Now().Add(time.Minute); ; {
		if m := listeningOn.FindStringSubmatch(p.out.String()); m != nil {
			p.URL = m[1]
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("run returned %v before listening\n%s", err, p.out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start within a minute\n%s", p.out.String())
		}
	}
}

// stop cancels run's context and answers what run returned.
func (p *program) stop() error {
	p.once.Do(func() {
		p.cancel()
		p.err = <-p.done
	})
	return p.err
}

// waitForLog waits until the program has logged a line matching re.
func (p *program) waitForLog(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !re.MatchString(p.out.String()); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line like %s\n%s", re, p.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
