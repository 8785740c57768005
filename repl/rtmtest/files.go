package rtmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build builds the rtm command into a directory of its own and returns
// the binary's path and a cleanup that removes the directory. TestMain
// calls it, before there is a testing.T.
func Build() (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "rtm-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	bin = filepath.Join(dir, "rtm")
	if out, err := exec.Command("go", "build", "-o", bin, "rtm").CombinedOutput(); err != nil {
		cleanup()
		return "", nil, &BuildError{Err: err, Output: out}
	}
	return bin, cleanup, nil
}

// BuildError is a failed build, with what the compiler said.
type BuildError struct {
	Err    error
	Output []byte
}

func (e *BuildError) Error() string { return "build rtm: " + e.Err.Error() + "\n" + string(e.Output) }

// WriteFiles writes files (path relative to a new temporary directory →
// contents), making the directories they need, and returns the
// directory. It is removed when the test ends.
func WriteFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
