package graph_test

import (
	"os/exec"
	"strings"
	"testing"

	"timeslots/graph"
)

// TestMirrorsFollowTheGQLGenOfGoMod fails while go.mod requires a gqlgen
// other than the one fastpages.go and transport.go were written against:
// they mirror its generated code and its transports, which a new release
// may change. Re-read each file against the new release, then set the
// constant it names.
func TestMirrorsFollowTheGQLGenOfGoMod(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read go.mod: %v", err)
	}
	// A replace directive shows after the version, so that a replaced
	// gqlgen fails the test too.
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Version}}{{with .Replace}} => {{.Path}} {{.Version}}{{end}}",
		"github.com/99designs/gqlgen").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/99designs/gqlgen: %v", err)
	}
	required := strings.TrimSpace(string(out))
	if required == "" {
		t.Fatal("go.mod names no gqlgen version")
	}
	for file, mirrored := range graph.MirroredGQLGen {
		if mirrored != required {
			t.Errorf("go.mod requires gqlgen %s, and %s mirrors gqlgen %s: re-read it against %s and set its constant",
				required, file, mirrored, required)
		}
	}
}
