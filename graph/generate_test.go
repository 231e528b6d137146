package graph_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the schema code in a copy of the
// module, exactly as `go generate ./...` does, and fails when the committed
// files differ: a schema or gqlgen.yml edit was not followed by a
// regeneration. The working tree is never touched.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run gqlgen: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := copyModule(root, tmp); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "tool", "gqlgen", "generate")
	cmd.Dir = filepath.Join(tmp, "graph")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool gqlgen generate: %v\n%s", err, out)
	}

	want, err := readTree(filepath.Join(tmp, "graph"))
	if err != nil {
		t.Fatal(err)
	}
	have, err := readTree(filepath.Join(root, "graph"))
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for name, content := range want {
		if !bytes.Equal(have[name], content) {
			stale = append(stale, "graph/"+name)
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			stale = append(stale, "graph/"+name+" (gqlgen no longer makes it)")
		}
	}
	if len(stale) > 0 {
		t.Fatalf("generated code is stale; run `go generate ./...` and commit:\n  %s", strings.Join(stale, "\n  "))
	}
}

// copyModule copies the module's files (not .git or local data) to dst.
func copyModule(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			switch rel {
			case ".git", "data", "node_modules", filepath.Join("bench", "out"):
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// readTree answers the files under dir by their path relative to it.
func readTree(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	return out, err
}
