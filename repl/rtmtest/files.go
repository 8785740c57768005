package rtmtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build builds the rtm command once for the test binary and returns the
// binary's path; Main removes it when the tests end. TestMain calls it in
// Main's setup, before there is a testing.T.
func Build() (string, error) {
	if kitDir == "" {
		return "", errors.New("build rtm: call Build in the setup of rtmtest.Main")
	}
	bin := filepath.Join(kitDir, "rtm")
	if out, err := exec.Command("go", "build", "-o", bin, "rtm").CombinedOutput(); err != nil {
		return "", &BuildError{Err: err, Output: out}
	}
	return bin, nil
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
