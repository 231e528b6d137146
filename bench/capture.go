package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// statement is one SQL statement the server sent, as PostgreSQL logged it:
// the text with $n placeholders and the values bound to them.
type statement struct {
	SQL    string
	Params []string // Params[i] is $(i+1); nil entries are NULL
	Nulls  []bool
}

// pgLog reads the PostgreSQL server log through pg_read_file (a superuser
// function), so the benchmark learns the exact SQL the server sends without
// a driver-side hook: log_min_duration_statement = 0 is set on the bench
// database only, for the connections of a short-lived capture server.
type pgLog struct {
	b    *benchDB
	path string
}

// findPGLog locates the server log: the collector's current file, or the
// file Debian's pg_ctlcluster sends stderr to.
func findPGLog(ctx context.Context, b *benchDB, override string) (*pgLog, error) {
	if override != "" {
		return &pgLog{b: b, path: override}, nil
	}
	var cur *string
	if err := b.pool.QueryRow(ctx, "SELECT pg_current_logfile()").Scan(&cur); err == nil && cur != nil {
		p := *cur
		if !filepath.IsAbs(p) {
			p = filepath.Join(b.setting(ctx, "data_directory"), p)
		}
		return &pgLog{b: b, path: p}, nil
	}
	var major string
	_ = b.pool.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major)
	matches, _ := filepath.Glob(fmt.Sprintf("/var/log/postgresql/postgresql-%s-*.log", major))
	sort.Slice(matches, func(i, j int) bool {
		a, _ := os.Stat(matches[i])
		c, _ := os.Stat(matches[j])
		return a != nil && c != nil && a.ModTime().After(c.ModTime())
	})
	if len(matches) == 0 {
		return nil, fmt.Errorf("cannot find the PostgreSQL log (logging_collector is off and no /var/log/postgresql/postgresql-%s-*.log); pass -pg-log", major)
	}
	return &pgLog{b: b, path: matches[0]}, nil
}

func (l *pgLog) size(ctx context.Context) (int64, error) {
	var n int64
	err := l.b.pool.QueryRow(ctx, "SELECT size FROM pg_stat_file($1)", l.path).Scan(&n)
	return n, err
}

func (l *pgLog) readFrom(ctx context.Context, off int64) (string, error) {
	end, err := l.size(ctx)
	if err != nil {
		return "", err
	}
	if end <= off {
		return "", nil
	}
	var s string
	err = l.b.pool.QueryRow(ctx, "SELECT pg_read_file($1, $2, $3)", l.path, off, end-off).Scan(&s)
	return s, err
}

var (
	// "duration: 0.123 ms  execute stmtcache_x: SELECT …" or "… statement: BEGIN"
	reExecute = regexp.MustCompile(`LOG:\s+(?:duration: [0-9.]+ ms\s+)?(?:execute [^:]+|statement): (.*)$`)
	reParams  = regexp.MustCompile(`DETAIL:\s+parameters: (.*)$`)
)

// parseStatements picks the executed statements of database db out of log
// text, in order, with their parameters.
func parseStatements(text, db string) []statement {
	var out []statement
	tag := "@" + db + " "
	afterExec := false // the previous line of db was an execute
	// PostgreSQL logs a statement's further lines each after a tab, with
	// no prefix: they continue the statement before them (kept), or one
	// that is skipped.
	cont, skipped := false, false
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "\t"); ok && cont {
			if !skipped {
				out[len(out)-1].SQL += "\n" + rest
			}
			continue
		}
		cont = false
		if !strings.Contains(line, tag) {
			continue
		}
		if m := reExecute.FindStringSubmatch(line); m != nil {
			cont = true
			if strings.Contains(m[1], "river_") || strings.HasPrefix(m[1], "-- name: ") {
				// The job queue's own polling, beside the request (its
				// queries are sqlc's, named by a first comment line).
				afterExec, skipped = false, true
				continue
			}
			out = append(out, statement{SQL: strings.TrimSpace(m[1])})
			afterExec, skipped = true, false
			continue
		}
		if m := reParams.FindStringSubmatch(line); m != nil && afterExec {
			out[len(out)-1].Params, out[len(out)-1].Nulls = parseParams(m[1])
		}
		afterExec = false
	}
	return out
}

// parseParams reads "$1 = '5', $2 = NULL, $3 = 'it”s'".
func parseParams(s string) ([]string, []bool) {
	var vals []string
	var nulls []bool
	for len(s) > 0 {
		s = strings.TrimLeft(s, ", ")
		i := strings.Index(s, " = ")
		if !strings.HasPrefix(s, "$") || i < 0 {
			break
		}
		s = s[i+3:]
		if strings.HasPrefix(s, "NULL") {
			vals, nulls = append(vals, ""), append(nulls, true)
			s = s[4:]
			continue
		}
		if !strings.HasPrefix(s, "'") {
			break
		}
		var b strings.Builder
		j := 1
		for j < len(s) {
			if s[j] == '\'' {
				if j+1 < len(s) && s[j+1] == '\'' {
					b.WriteByte('\'')
					j += 2
					continue
				}
				break
			}
			b.WriteByte(s[j])
			j++
		}
		vals, nulls = append(vals, b.String()), append(nulls, false)
		if j >= len(s) {
			break
		}
		s = s[j+1:]
	}
	return vals, nulls
}

// capture runs each request against a server whose connections log every
// statement, and answers the statements each request made.
func capture(ctx context.Context, b *benchDB, bin, logOverride string, requests []func(*server) error) ([][]statement, error) {
	log, err := findPGLog(ctx, b, logOverride)
	if err != nil {
		return nil, err
	}
	if err := b.exec(ctx, "ALTER DATABASE "+b.name+" SET log_min_duration_statement = 0"); err != nil {
		return nil, err
	}
	defer func() {
		_ = b.exec(context.Background(), "ALTER DATABASE "+b.name+" RESET log_min_duration_statement")
	}()
	// Two connections: goose holds one for its migration lock while it
	// migrates over another, so a pool of one never gets past start-up.
	// Requests are sent one at a time, so their statements stay in order.
	s, err := startServer(ctx, bin, b.url, "DB_MAX_CONNS=2")
	if err != nil {
		return nil, err
	}
	defer s.stop()
	out := make([][]statement, len(requests))
	for i, req := range requests {
		off, err := log.size(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the PostgreSQL log %s: %w", log.path, err)
		}
		if err := req(s); err != nil {
			return nil, err
		}
		// The log is written by the backend before it answers; give the
		// file a moment to show every line.
		var stmts []statement
		for try := 0; try < 20; try++ {
			time.Sleep(50 * time.Millisecond)
			text, err := log.readFrom(ctx, off)
			if err != nil {
				return nil, err
			}
			stmts = parseStatements(text, b.name)
			if len(stmts) > 0 && strings.HasSuffix(text, "\n") {
				break
			}
		}
		if len(stmts) == 0 {
			return nil, fmt.Errorf("request %d left no statement in %s", i, log.path)
		}
		out[i] = stmts
	}
	return out, nil
}
