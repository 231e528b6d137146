package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A DATABASE_URL or REDIS_URL that its client cannot read stops every
// command before anything starts, with one line naming the variable and
// no secret, as a bad setting does.
func TestBadURLsStopEveryCommandBeforeAnythingStarts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"serve with an unknown database", nil, map[string]string{"DATABASE_URL": "mysql://app:pa55w0rd@db/timeslots"}, "DATABASE_URL"},
		{"stats with an unknown database", []string{"stats"}, map[string]string{"DATABASE_URL": "mysql://app:pa55w0rd@db/timeslots"}, "DATABASE_URL"},
		{"serve with a Redis database that is not a number", nil, map[string]string{"REDIS_URL": "redis://:pa55w0rd@127.0.0.1:6379/first"}, "REDIS_URL"},
		{"migrate with an unknown Redis option", []string{"migrate"}, map[string]string{"REDIS_URL": "redis://:pa55w0rd@127.0.0.1:6379/0?pool=pa55w0rd"}, "REDIS_URL"},
		{"serve with a bad setting", nil, map[string]string{"PORT": "70000"}, "PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "x.db")
			env := map[string]string{"DATABASE_URL": "sqlite:" + file, "PORT": "0"}
			for k, v := range tc.env {
				env[k] = v
			}
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"timeslots"}, tc.args...), envOf(env), &out)
			if err == nil {
				t.Fatal("run started; want a configuration error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want+" ") || strings.Contains(msg, "\n") || strings.Contains(msg, "pa55w0rd") {
				t.Errorf("error %q: want one line starting with %s and no secret", msg, tc.want)
			}
			if code := exitCode(err); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if out.Len() != 0 {
				t.Errorf("nothing may start before the configuration is valid; output:\n%s", out.String())
			}
			if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the database file exists (%v): something started", err)
			}
		})
	}
}
