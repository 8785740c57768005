package rtmtest

// Main and Child: one test binary, several processes. A test that needs
// another process running its package's code (a writer killed at a
// failpoint, a hostile client, a prompt) starts the test binary again
// with a role in the environment; Main, in that process, plays the role
// instead of running the tests.

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
)

// RoleEnv names the environment variable that tells a test binary
// started by Child which role to play.
const RoleEnv = "RTM_TEST_ROLE"

// StoreDirEnv names the environment variable that moves rtm's stores out
// of /dev/shm: proto.StoreDirEnv, spelled out because this package
// imports no rtm package (a test of proto checks that the two agree).
const StoreDirEnv = "RTM_STORE_DIR"

// Roles are the parts a package's test binary can play in a process of
// its own, by name. Each returns the process's exit status.
type Roles map[string]func() int

// kitDir holds what Main makes for the test binary: the store directory
// and the built rtm. It is removed when the tests end.
var kitDir string

// Main is the TestMain of an rtm package. Started by Child, the binary
// plays its role from roles and exits with the role's status. Otherwise
// Main makes the binary's private store directory and points
// StoreDirEnv at it (so that an rtm started by --name alone, or a store
// named by StoreDir, meets no other rtm of this uid), runs setup if it
// is not nil, runs the tests, removes what it made and exits with the
// tests' status. An error from setup ends the binary before any test.
func Main(m *testing.M, roles Roles, setup func() error) {
	if role, ok := os.LookupEnv(RoleEnv); ok {
		play, ok := roles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "%s: no role %q in this test binary\n", RoleEnv, role)
			os.Exit(2)
		}
		os.Exit(play())
	}
	code, err := run(m, setup)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M, setup func() error) (int, error) {
	dir, err := os.MkdirTemp("", "rtm-kit-")
	if err != nil {
		return 0, err
	}
	kitDir = dir
	defer os.RemoveAll(dir)
	stores, err := makeStoreDir()
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(stores)
	os.Setenv(StoreDirEnv, stores)
	if setup != nil {
		if err := setup(); err != nil {
			return 0, err
		}
	}
	return m.Run(), nil
}

// makeStoreDir makes the private store directory in shared memory, where
// stores go by default (the temporary directory where there is none). It
// is readable by all, as /dev/shm is, so that a test can run clients of
// other uids that map a store there.
func makeStoreDir() (string, error) {
	parent := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		parent = "/dev/shm"
	}
	dir, err := os.MkdirTemp(parent, "rtm-stores-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// StoreDir is the test binary's private store directory (see Main).
func StoreDir() string { return os.Getenv(StoreDirEnv) }

var storeSeq atomic.Uint64

// StorePath names a new store file in StoreDir for the test, removed
// (with any temporary siblings the store made) when the test ends.
func StorePath(t testing.TB) string {
	t.Helper()
	dir := StoreDir()
	if dir == "" {
		t.Fatal("no store directory: the package's TestMain must call rtmtest.Main")
	}
	p := filepath.Join(dir, fmt.Sprintf("rtm.t%d", storeSeq.Add(1)))
	t.Cleanup(func() {
		matches, _ := filepath.Glob(p + "*")
		for _, m := range matches {
			os.Remove(m)
		}
	})
	return p
}

// Child returns a command that runs this test binary in role, one of the
// Roles its TestMain gives Main, with env (NAME=value) added to its
// environment. The command runs no test even in a binary whose TestMain
// does not play roles.
func Child(t testing.TB, role string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{RoleEnv + "=" + role}, env...)...)
	return cmd
}

// Parallel lets up to n tests that call t.Parallel run at once in this
// test binary, unless the command line says otherwise (-parallel): for a
// package whose parallel tests mostly wait on the processes they start
// (timers, kills, timeouts), not on the CPU, whose count -parallel
// follows by default. Call it in Main's setup.
func Parallel(n int) error {
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if given {
		return nil
	}
	return flag.Set("test.parallel", strconv.Itoa(n))
}
