package main

// The command line: usage errors, exit statuses, what a failed start
// leaves behind (nothing), and the start-up banner.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/proto"
	"rtm/repl/rtmtest"
	"rtm/store"

	"golang.org/x/sys/unix"
)

// shmLeftovers lists the files of an instance's store: the store and its
// temporary siblings.
func shmLeftovers(store string) []string {
	m, _ := filepath.Glob(store + "*")
	return m
}

func TestUsageErrorsCreateNothing(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "stray"}, `unexpected argument "stray"`},
		{[]string{"server", "--fresh", "x.rtm"}, `unexpected argument "x.rtm"`},
		{[]string{"server", "--script", "/nonexistent/setup.rtm"}, "--script: stat /nonexistent/setup.rtm: no such file or directory"},
		{[]string{"server", "--script", os.TempDir()}, "is a directory"},
		{[]string{"server", "--log-bytes", "0"}, "--log-bytes 0: want 1 to 68719476736 (64 GiB)"},
		{[]string{"server", "--log-bytes", "99999999999999"}, "--log-bytes 99999999999999: want 1 to 68719476736 (64 GiB)"},
		{[]string{"server", "--log-bytes", "9223372036854775000"}, "--log-bytes 9223372036854775000: want 1 to"},
		{[]string{"client", "--to-kernel", "--kernel-metric", "4294967306"}, "--kernel-metric 4294967306: want 0 to 4294967295"},
		{[]string{"client", "stray"}, `unexpected argument "stray"`},
		{[]string{"client", "--store", "/dev/shm/x"}, "flag provided but not defined: -store"},
		{[]string{"client", "--client-name", "tab\there"}, `--client-name: client name "tab\there" holds the control character U+0009`},
		{[]string{"client", "--client-name", "\u202eevil"}, `--client-name: client name "\u202eevil" holds U+202E, which does not print as itself`},
		{[]string{"client", "--client-name", "a\u200bb"}, `holds U+200B, which does not print as itself`},
		{[]string{"client", "--client-name", "   "}, `--client-name: client name "   " is only spaces`},
		{[]string{"client", "--client-name", strings.Repeat("n", 65)}, "65 bytes long; at most 64"},
		{[]string{"client", "--client-name", ""}, "--client-name: client name is empty"},
		{[]string{"client", "--wait", "5x"}, `invalid value "5x" for flag -wait: want a duration such as 5s, 500ms or 1m (or seconds: 5); see rtm client -h`},
		{[]string{"server", "--capacity", "0"}, "--capacity 0: want 1 to 268435456 entries"},
		{[]string{"server", "--capacity", "99999999999"}, "--capacity 99999999999: want 1 to 268435456 entries"},
		{[]string{"server", "--route-capacity", "0"}, "--route-capacity 0: want 1 to 16777216 entries"},
		{[]string{"server", "--route-capacity", "16777217"}, "--route-capacity 16777217: want 1 to 16777216 entries"},
		{[]string{"version", "--x"}, `rtm version: takes no arguments (got "--x`},
		{[]string{"server", "--max-clients", "0"}, "--max-clients 0: want 1 or more"},
		{[]string{"server", "--store", os.TempDir()}, "--store " + os.TempDir() + ": names a directory; give the path of the store's file"},
		{[]string{"server", "--store", "/nonexistent-rtm-dir/"}, "names a directory"},
		{[]string{"client", "--bogus"}, "flag provided but not defined: -bogus; see rtm client -h"},
	} {
		args := append(append([]string(nil), tc.args...), "--name", in.name, "--socket", in.socket)
		if tc.args[0] == "server" && !slices.Contains(tc.args, "--store") {
			args = append(args, "--store", in.store)
		}
		r := runRTM(t, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "is `rtm server") {
			t.Errorf("%v: a usage error asks whether the server runs: %q", tc.args, r.stderr)
		}
		if strings.Count(r.stderr, "\n") > 1 {
			t.Errorf("%v: a usage error of %d lines (the one error and a hint to -h will do): %q", tc.args, strings.Count(r.stderr, "\n"), r.stderr)
		}
		if left := shmLeftovers(in.store); len(left) > 0 {
			t.Fatalf("%v created %v", tc.args, left)
		}
	}
	if r := runRTM(t, "", "ls", "extra"); r.code != 2 || strings.Contains(r.stderr, "--script") {
		t.Errorf("rtm ls extra: exit %d, stderr %q; want 2, without --script, which ls has not", r.code, r.stderr)
	}
	// A name no instance can have is a usage error, as a missing one is.
	if r := runRTM(t, "", "rm", "ok-name", "a b"); r.code != 2 || !strings.Contains(r.stderr, `instance name "a b"`) || r.stdout != "" {
		t.Errorf("rtm rm 'a b': exit %d, stdout %q, stderr %q; want 2, naming it, before removing anything", r.code, r.stdout, r.stderr)
	}
	// Flags may follow the files, as typed after a tab completion.
	if r := runRTM(t, "", "test", "scripts/client-changes.rtm", "-run", "no-such"); !strings.Contains(r.stderr, `no scenario matches -run "no-such"`) {
		t.Errorf("rtm test FILE -run X: exit %d, stderr %q", r.code, r.stderr)
	}
	// A line may not take no time at all, nor less.
	for _, d := range []string{"0", "-1s"} {
		if r := runRTM(t, "", "test", "-timeout", d, "scripts/client-changes.rtm"); r.code != 2 || !strings.Contains(r.stderr, "-timeout") || !strings.Contains(r.stderr, "want a time above 0") {
			t.Errorf("rtm test -timeout %s: exit %d, stderr %q; want 2, naming it", d, r.code, r.stderr)
		}
	}
	for _, name := range []string{"..", ".", "", "a/b", "-x", strings.Repeat("n", 65), "tab\tname", "a.tmp-999999-x"} {
		r := runRTM(t, "", "server", "--name", name, "--exit-at-eof")
		if r.code != 2 || !strings.Contains(r.stderr, "--name") {
			t.Errorf("--name %q: exit %d, stderr %q", name, r.code, r.stderr)
		}
		if p := proto.DefaultStore(name); name != "" && name != "." && name != ".." && shmLeftovers(p) != nil {
			t.Errorf("--name %q created %s", name, p)
		}
	}
}

// TestFailedStartRemovesStore: a start that fails after the store was
// created (the socket is a live server's, a --script stops at an error)
// removes it; a store that existed before is kept.
func TestFailedStartRemovesStore(t *testing.T) {
	t.Parallel()
	live := newInstance(t)
	srv := live.server()
	in := newInstance(t)
	r := runRTM(t, "", "server", "--exit-at-eof", "--name", in.name, "--store", in.store, "--socket", live.socket)
	if r.code != 1 || !strings.Contains(r.stderr, "socket is in use") {
		t.Fatalf("socket in use: exit %d, stderr %q", r.code, r.stderr)
	}
	if left := shmLeftovers(in.store); len(left) > 0 {
		t.Fatalf("failed start left %v", left)
	}
	srv.must("expect count clients 0")

	bad := filepath.Join(t.TempDir(), "bad.rtm")
	os.WriteFile(bad, []byte("C,10.1.0.0/16,192.168.1.1,eth0\nC,10.1.1.1/24,192.168.1.1,eth0\n"), 0o644)
	r = runRTM(t, "", append([]string{"server", "--exit-at-eof", "--script", bad}, in.flags()...)...)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":2:") {
		t.Fatalf("bad script: exit %d, stderr %q", r.code, r.stderr)
	}
	if left := shmLeftovers(in.store); len(left) > 0 {
		t.Fatalf("a failed --script left the store it created: %v", left)
	}
	// Run twice, the same failing script says the same thing: nothing of
	// the first attempt is left to trip on.
	if r2 := runRTM(t, "", append([]string{"server", "--exit-at-eof", "--script", bad}, in.flags()...)...); r2.stderr != r.stderr || r2.code != 1 {
		t.Fatalf("second attempt differs: exit %d, %q vs %q", r2.code, r2.stderr, r.stderr)
	}
	// A store that existed is the user's: kept, with what the script did
	// before its error.
	if r := runRTM(t, "", append([]string{"server", "--exit-at-eof"}, in.flags()...)...); r.code != 0 {
		t.Fatalf("create: exit %d: %s", r.code, r.stderr)
	}
	runRTM(t, "", append([]string{"server", "--exit-at-eof", "--script", bad}, in.flags()...)...)
	if r := runRTM(t, "show routes\n", append([]string{"server", "--exit-at-eof"}, in.flags()...)...); r.stdout != "10.1.0.0/16 via 192.168.1.1 dev eth0\n" {
		t.Fatalf("kept store: %q (%s)", r.stdout, r.stderr)
	}
	// --fresh empties the store, or makes it anew for other capacities,
	// only once the server listens: a start refused before keeps it whole.
	for _, extra := range [][]string{{"--fresh"}, {"--fresh", "--capacity", "2000"}} {
		args := append([]string{"server", "--exit-at-eof", "--name", in.name, "--store", in.store, "--socket", live.socket}, extra...)
		if r := runRTM(t, "", args...); r.code != 1 || !strings.Contains(r.stderr, "socket is in use") {
			t.Fatalf("%v: exit %d, stderr %q", extra, r.code, r.stderr)
		}
		if r := runRTM(t, "show routes\n", append([]string{"server", "--exit-at-eof"}, in.flags()...)...); r.stdout != "10.1.0.0/16 via 192.168.1.1 dev eth0\n" {
			t.Fatalf("after a refused start with %v: %q (%s)", extra, r.stdout, r.stderr)
		}
	}
}

// TestFailedScriptKeepsClientsChanges: the server serves while its
// --script runs; a client's change made then was answered as applied, so
// a script that fails after it keeps the store it created, and says so
// (it removed it, with the change, and said nothing).
func TestFailedScriptKeepsClientsChanges(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "more.rtm")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "setup.rtm")
	os.WriteFile(script, []byte("C,10.1.0.0/16,192.168.1.1,eth0\nsource "+fifo+"\n"), 0o644)
	srv := start(t, append([]string{"server", "--exit-at-eof", "--script", script}, in.flags()...)...)
	in.waitSocket(srv)
	if r := runRTM(t, "", "client", "--socket", in.socket, "-c", "C,02:00:00:00:00:01,10.0.0.1"); r.code != 0 {
		t.Fatalf("client's change: exit %d, %s", r.code, r.stderr)
	}
	if err := os.WriteFile(fifo, []byte("C,10.1.1.1/24,192.168.1.1,eth0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(20 * time.Second); code != 1 {
		t.Fatalf("server exit %d, want 1: %s", code, srv.errb)
	}
	if want := "rtm server: kept store " + in.store + ", which this start created, though its --script failed: clients changed it"; !strings.Contains(srv.errb.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, srv.errb)
	}
	if r := runRTM(t, "lookup 02:00:00:00:00:01\nshow routes\n", append([]string{"server", "--exit-at-eof"}, in.flags()...)...); r.stdout != "02:00:00:00:00:01 10.0.0.1\n10.1.0.0/16 via 192.168.1.1 dev eth0\n" {
		t.Fatalf("the store after the failed script: %q (%s)", r.stdout, r.stderr)
	}
}

// TestFreshTooBigKeepsStore: a store made anew with --fresh for
// capacities its file system has no room for is refused before the old
// one is removed.
func TestFreshTooBigKeepsStore(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a 1 MiB tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	in := newInstance(t)
	in.store = filepath.Join(dir, "rtm."+in.name)
	if r := runRTM(t, "C,10.1.0.0/16,192.168.1.1,eth0\n", append([]string{"server", "--exit-at-eof", "--capacity", "1000", "--route-capacity", "100"}, in.flags()...)...); r.code != 0 {
		t.Fatalf("create: exit %d: %s", r.code, r.stderr)
	}
	r := runRTM(t, "", append([]string{"server", "--exit-at-eof", "--fresh", "--capacity", "100000"}, in.flags()...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "nothing was changed") || !strings.Contains(r.stderr, "100000 MACs") {
		t.Fatalf("--fresh too big: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runRTM(t, "show routes\n", append([]string{"server", "--exit-at-eof"}, in.flags()...)...); r.stdout != "10.1.0.0/16 via 192.168.1.1 dev eth0\n" {
		t.Fatalf("after the refusal: %q (%s)", r.stdout, r.stderr)
	}
}

// TestExitStatusTellsTruth: a replay in which any line failed exits 1,
// however it ended: at end of input, at quit, with or without
// --keep-going, from a script or from stdin.
func TestExitStatusTellsTruth(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "s.rtm")
	os.WriteFile(script, []byte("C,10.1.0.0/16,192.168.1.1,eth0\nD,10.9.0.0/16\nC,10.2.0.0/16,192.168.1.1,eth0\nquit\nC,10.3.0.0/16,192.168.1.1,eth0\n"), 0o644)
	base := append([]string{"server", "--fresh", "--exit-at-eof"}, in.flags()...)
	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		code    int
		summary string // the count of failed lines, which a quit ended without
	}{
		{"keep-going script ending with quit", []string{"--keep-going", "--script", script}, "", 1, script + ": 1 of 4 lines failed\n"},
		{"keep-going stdin ending with quit", []string{"--keep-going"}, "D,10.9.0.0/16\nquit\nD,10.8.0.0/16\n", 1, "<stdin>: 1 of 2 lines failed\n"},
		{"keep-going stdin at end of input", []string{"--keep-going"}, "D,10.9.0.0/16\nshow routes\n", 1, "<stdin>: 1 of 2 lines failed\n"},
		{"stdin stops at its error", nil, "D,10.9.0.0/16\nquit\n", 1, ""},
		{"clean stdin ending with quit", nil, "show routes\nquit\n", 0, ""},
		{"quit before the bad line", nil, "quit\nD,10.9.0.0/16\n", 0, ""},
	} {
		r := runRTM(t, tc.stdin, append(append([]string(nil), base...), tc.args...)...)
		if r.code != tc.code {
			t.Errorf("%s: exit %d, want %d; stderr %q", tc.name, r.code, tc.code, r.stderr)
		}
		if tc.summary != "" && !strings.HasSuffix(r.stderr, tc.summary) {
			t.Errorf("%s: stderr %q does not end with %q", tc.name, r.stderr, tc.summary)
		}
		// Only a replay stopped by its failed line quits for it, and says so.
		const why = "rtm server: quitting, as a line of its input failed"
		if stopped := tc.name == "stdin stops at its error"; strings.Contains(r.stderr, why) != stopped {
			t.Errorf("%s: stderr %q, which should say %q: %v", tc.name, r.stderr, why, stopped)
		}
	}
	// The keep-going script applied its good lines up to quit, not after.
	r := runRTM(t, "show routes\n", append([]string{"server", "--exit-at-eof", "--keep-going", "--fresh", "--script", script}, in.flags()...)...)
	if r.code != 1 || !strings.Contains(r.stderr, script+":2: delete route 10.9.0.0/16: not found") {
		t.Fatalf("keep-going: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runRTM(t, "show routes\n", append([]string{"server", "--exit-at-eof"}, in.flags()...)...); r.stdout != "10.1.0.0/16 via 192.168.1.1 dev eth0\n10.2.0.0/16 via 192.168.1.1 dev eth0\n" {
		t.Fatalf("after the keep-going replay: %q", r.stdout)
	}
}

// TestStartBanner: every server start says on stderr which store it
// serves and whether it was created or reopened, with what it holds.
func TestStartBanner(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	run := func(stdin string, extra ...string) string {
		r := runRTM(t, stdin, append(append([]string{"server", "--exit-at-eof"}, in.flags()...), extra...)...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		return r.stderr
	}
	want := fmt.Sprintf("rtm server %s: socket %s, store %s (created): 0 routes, 0 MACs\n", in.name, in.socket, in.store)
	if got := run("C,10.1.0.0/16,192.168.1.1,eth0\nC,00:1a:2b:3c:4d:5e,10.1.1.7\n"); got != want {
		t.Fatalf("banner:\n got %q\nwant %q", got, want)
	}
	if got := run(""); !strings.Contains(got, "(reopened): 1 routes, 1 MACs") {
		t.Fatalf("banner of a reopened store: %q", got)
	}
	if got := run("", "--fresh"); !strings.Contains(got, "(reopened, emptied): 0 routes, 0 MACs") {
		t.Fatalf("banner with --fresh: %q", got)
	}
}

// TestCapacityFlags: capacities size a store when it is created; given
// again with other values they are refused, unless --fresh recreates the
// store at the new size. The banner says when a table is full.
func TestCapacityFlags(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	base := append([]string{"server", "--exit-at-eof"}, in.flags()...)
	if r := runRTM(t, "C,00:1a:2b:3c:4d:5e,10.1.1.7\n", append(base, "--capacity", "1000", "--route-capacity", "100")...); r.code != 0 {
		t.Fatalf("create: exit %d: %s", r.code, r.stderr)
	}
	r := runRTM(t, "", append(base, "--capacity", "2000")...)
	if r.code != 1 || !strings.Contains(r.stderr, "has room for 1000 MACs, not 2000 (--capacity)") || !strings.Contains(r.stderr, "--fresh") {
		t.Fatalf("capacity mismatch: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runRTM(t, "show stats\nshow macs\n", append(base, "--capacity", "1000")...)
	if r.code != 0 || statValue(r.stdout, "mac_capacity") != 1000 || statValue(r.stdout, "route_capacity") != 100 ||
		statValue(r.stdout, "macs") != 1 || statValue(r.stdout, "mac_fill_percent") != 1 {
		t.Fatalf("same capacity: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runRTM(t, "show stats\n", append(base, "--fresh", "--capacity", "2000")...)
	if r.code != 0 || statValue(r.stdout, "mac_capacity") != 2000 || statValue(r.stdout, "macs") != 0 ||
		statValue(r.stdout, "route_capacity") != 100 {
		t.Fatalf("--fresh with a new capacity: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runRTM(t, "C,00:1a:2b:3c:4d:5f,10.1.1.8\n", append(base, "--fresh", "--capacity", "2", "--route-capacity", "1")...)
	if r.code != 0 || !strings.Contains(r.stderr, ": 0 routes, 0 MACs\n") {
		t.Fatalf("--fresh with two MACs' room: exit %d, stderr %q", r.code, r.stderr)
	}
	// A full table is said as the server starts: its first create fails.
	r = runRTM(t, "", base...)
	if want := "(reopened): 0 routes, 1 MACs\n"; r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Fatalf("a table with room: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	r = runRTM(t, "C,00:1a:2b:3c:4d:60,10.1.1.9\nC,10.1.0.0/16,192.168.1.1,eth0\n", base...)
	if r.code != 0 {
		t.Fatalf("filling the tables: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runRTM(t, "", base...)
	if want := "(reopened): 1 routes, 2 MACs; full: the route table (1 entry) and the MAC table (2 entries): a create fails until a delete makes room\n"; r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Fatalf("full tables: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
}

// TestScriptOddities: a byte-order mark before the first line is skipped;
// an error about a huge field quotes its start and says how long it was.
func TestScriptOddities(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	dir := t.TempDir()
	bom := filepath.Join(dir, "bom.rtm")
	os.WriteFile(bom, []byte("\ufeffC,10.1.0.0/16,192.168.1.1,eth0\r\nexpect count routes 1\r\n"), 0o644)
	r := runRTM(t, "", append([]string{"server", "--exit-at-eof", "--script", bom}, in.flags()...)...)
	if r.code != 0 {
		t.Fatalf("script with a BOM: exit %d: %s", r.code, r.stderr)
	}
	huge := "C,10.2.0.0/16,192.168.1.1," + strings.Repeat("x", 100_000) + "\n"
	r = runRTM(t, huge, append([]string{"server", "--exit-at-eof"}, in.flags()...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "(100000 bytes)") || len(r.stderr) > 1000 {
		t.Fatalf("huge field: exit %d, %d bytes of stderr: %.300q", r.code, len(r.stderr), r.stderr)
	}
}

// TestClientRefusedExits: a client the server refuses says why and exits
// 1, at once, without asking whether a server runs; one refused when it
// reconnects (the restarted server no longer allows its uid) exits the
// same way instead of retrying forever.
func TestClientRefusedExits(t *testing.T) {
	in, bin := nobodyInstance(t)
	srv := in.server("--allow-uid", "65534", "--group")
	os.Chmod(in.socket, 0o666)
	os.Chmod(in.store, 0o644)
	watch := startCmd(t, commandAs(nobody, nil, bin, "client", "--watch", "--socket", in.socket, "--client-name", "nobody"))
	// Once it has its tables: a client that loses its server before that
	// gives up, as it would at start.
	if !rtmtest.WaitFor(20*time.Second, func() bool { return strings.Contains(watch.out.String(), "# snapshot:") }) {
		t.Fatalf("the client never had its snapshot: %s", watch.errb.String())
	}
	srv.cmd.Process.Kill() // a crash: the client keeps its tables and reconnects
	<-srv.done
	// Restarted without --allow-uid: the reconnect is refused.
	in.server()
	os.Chmod(in.socket, 0o666)
	select {
	case <-watch.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("refused client still running after 20s: %s", watch.errb.String())
	}
	if code := watch.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(watch.errb.String(), "uid 65534 may not connect") {
		t.Fatalf("refused on reconnect: exit %d, stderr %q", code, watch.errb.String())
	}
}

// TestNoServerHint: a client with nothing to connect to names what it
// looked for: the instance, or the socket it was given.
func TestNoServerHint(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"--socket", in.socket}, "(is a server listening on " + in.socket + "?)"},
		{[]string{"--name", in.name}, "(is `rtm server --name " + in.name + "` running, as this user? another user's server: --socket PATH)"},
		{[]string{"--socket", in.socket, "--wait", "200ms"}, "(waited --wait 200ms for it: is a server listening on " + in.socket + "?)"},
	} {
		r := runRTM(t, "", append([]string{"client"}, tc.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.hint) {
			t.Errorf("client %v with no server: exit %d, stderr %q; want 1 and %q", tc.args, r.code, r.stderr, tc.hint)
		}
		// The error in words, not the net package's say of the call.
		if !strings.Contains(r.stderr, ".sock: no such file or directory\n") || strings.Contains(r.stderr, "dial unixpacket") {
			t.Errorf("client %v with no server: %q; want the socket and the errno, without the dial's own words", tc.args, r.stderr)
		}
	}
}

// TestClientHintStoppedOrCrashed: a client by --name whose instance has
// no server says whether its store was stopped or its server crashed,
// with the command that serves it again, not only whether a server runs.
func TestClientHintStoppedOrCrashed(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	if r := h.rtm("", "server", "--name", "st", "--exit-at-eof"); r.code != 0 {
		t.Fatalf("server st: exit %d: %s", r.code, r.stderr)
	}
	// crash starts a server of name (args its flags), and kills it once
	// it listens; its pid.
	crash := func(name string, args ...string) int {
		srv := h.command(append([]string{"server", "--name", name}, args...)...)
		in, _ := srv.StdinPipe()
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); srv.Process.Kill(); srv.Wait() })
		if !rtmtest.WaitFor(20*time.Second, func() bool { return socketAccepts(filepath.Join(h.runtime, "rtm", name+".sock")) }) {
			t.Fatalf("server %s never listened", name)
		}
		srv.Process.Kill()
		srv.Wait()
		return srv.Process.Pid
	}
	cr := crash("cr")
	away := filepath.Join(t.TempDir(), "away.store")
	aw := crash("aw", "--store", away)
	for _, tc := range []struct{ name, hint string }{
		{"st", "(instance st is stopped, its store kept: `rtm server --name st` starts it)\n"},
		{"cr", fmt.Sprintf("(instance cr crashed (pid %d): `rtm server --name cr` repairs its store and starts it)\n", cr)},
		{"aw", fmt.Sprintf("(instance aw crashed (pid %d): `rtm server --name aw --store %s` repairs its store and starts it)\n", aw, away)},
		{"none", "(is `rtm server --name none` running, as this user? another user's server: --socket PATH)\n"},
	} {
		if r := h.rtm("", "client", "--name", tc.name, "-c", "show routes"); r.code != 1 || !strings.HasSuffix(r.stderr, tc.hint) {
			t.Errorf("client --name %s: exit %d, stderr %q; want 1 and %q", tc.name, r.code, r.stderr, tc.hint)
		}
	}
	// Another uid's store of the name, readable (as a --group store is
	// to its group), is no instance of this uid's to start.
	if os.Geteuid() == 0 {
		os.Chmod(filepath.Join(h.stores, "rtm.st"), 0o644)
		env := []string{"TMPDIR=" + sharedDir(t, ""), proto.StoreDirEnv + "=" + h.stores}
		r := runCmd(t, commandAs(nobody, env, nobodyBinary(t), "client", "--name", "st", "-c", "show routes"), "", time.Minute)
		if want := "(is `rtm server --name st` running, as this user? another user's server: --socket PATH)\n"; r.code != 1 || !strings.HasSuffix(r.stderr, want) {
			t.Errorf("client --name st as uid 65534, the store root's: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
		}
	}
}

// TestSocketPathTooLong: a socket path longer than a Unix socket's
// address holds is refused by its length, before a store is made, and
// the client names the limit, with no hint that the server is missing.
func TestSocketPathTooLong(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	dir := t.TempDir()
	// 108 bytes: the address's size, with no room for its NUL.
	in.socket = filepath.Join(dir, strings.Repeat("s", 108-len(dir)-1-len(".sock"))+".sock")
	if len(in.socket) != 108 {
		t.Fatalf("socket path of %d bytes", len(in.socket))
	}
	for _, mode := range []string{"server", "client"} {
		args := []string{mode, "--socket", in.socket}
		if mode == "server" {
			args = append(args, "--name", in.name, "--store", in.store, "--exit-at-eof")
		}
		r := runRTM(t, "", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "108 bytes, and a Unix socket's path holds at most 107: pick a shorter --socket") || strings.Contains(r.stderr, "(is ") {
			t.Errorf("%s: exit %d, stderr %q", mode, r.code, r.stderr)
		}
	}
	if left := shmLeftovers(in.store); len(left) > 0 {
		t.Errorf("a refused start left %v", left)
	}
}

// TestSocketOfAnotherInstanceRefused: a server is refused the default
// socket of an instance of another name, before it makes anything: the
// clients of that name, who find their server by its socket, would get
// this one's tables, and rtm ls would list it under that name. Its own
// name's default socket, given, is no refusal.
func TestSocketOfAnotherInstanceRefused(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	runtime, stores := h.runtime, h.stores
	lab := filepath.Join(runtime, "rtm", "lab.sock")
	for _, tc := range []struct{ args []string }{
		{[]string{"--name", "other", "--socket", lab}},
		{[]string{"--socket", lab}},
		{[]string{"--socket", filepath.Join(runtime, "rtm", "..", "rtm", "lab.sock")}},
	} {
		r := h.rtm("", append([]string{"server", "--exit-at-eof"}, tc.args...)...)
		want := fmt.Sprintf("rtm server: --socket %s is instance lab's socket, where clients of --name lab connect: serve it as `rtm server --name lab`, or give this server another socket path\n", lab)
		if r.code != 2 || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("server %v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, want)
		}
	}
	if left, _ := os.ReadDir(stores); len(left) > 0 {
		t.Errorf("the refused starts left %v in the store directory", left)
	}
	if _, err := os.Stat(lab); err == nil {
		t.Errorf("the refused starts left the socket %s", lab)
	}
	if r := h.rtm("show info\n", "server", "--exit-at-eof", "--name", "lab", "--socket", lab); r.code != 0 || !strings.Contains(r.stdout, "socket    "+lab+"\n") {
		t.Errorf("server --name lab on its own default socket: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestChangedAtOnce: a store records the time of its server's first
// change at once, not at the next once-a-second mark: a server killed
// within that second left rtm ls showing no time for a store that had
// changed.
func TestChangedAtOnce(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.0.0/16,-,eth0")
	srv.signal(syscall.SIGKILL)
	srv.exited(10 * time.Second)
	r := runRTM(t, "", "ls", "--json")
	var list []proto.Instance
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("rtm ls --json: %v: %s", err, r.stdout)
	}
	for _, i := range list {
		if i.Name == in.name {
			if i.Store == nil || i.Store.Routes != 1 || i.Store.Changed.IsZero() {
				t.Fatalf("rtm ls after the kill: %+v, want its route and the time of its change", i.Store)
			}
			return
		}
	}
	t.Fatalf("rtm ls does not list %s: %s", in.name, r.stdout)
}

// TestClientHintWhileServerStarts: a server started again after a crash
// opens (and repairs) its store before it listens, the dead server's
// socket still there. A client by --name then is told that the server is
// starting and to try again or --wait, and rtm ls says so; they said its
// socket had been removed and to restart it, or, while the store still
// named the dead server, asked whether one was running. The start is
// held in that moment with SIGSTOP.
func TestClientHintWhileServerStarts(t *testing.T) {
	t.Parallel()
	runtime, stores := t.TempDir(), newStoreDir(t)
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, proto.StoreDirEnv+"="+stores)
	name := fmt.Sprintf("hint%d", os.Getpid())
	path := filepath.Join(stores, "rtm."+name)
	serve := func() (*exec.Cmd, io.WriteCloser) {
		cmd := exec.Command(rtmBin, "server", "--name", name)
		cmd.Env = env
		in, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGCONT); cmd.Process.Kill(); cmd.Wait() })
		return cmd, in
	}
	first, in := serve()
	io.WriteString(in, "C,10.1.0.0/16,-,eth0\n")
	if !rtmtest.WaitFor(20*time.Second, func() bool { st, err := store.Inspect(path); return err == nil && st.Routes == 1 }) {
		t.Fatal("the first server never made its change")
	}
	first.Process.Kill() // leaves its socket and a store to repair
	first.Wait()
	var second *exec.Cmd
	for try := 0; second == nil; try++ {
		if try == 20 {
			t.Fatal("never caught a server starting: its store open, its socket not yet listening")
		}
		cmd, _ := serve()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatal("a server neither started nor listened in 20 s")
			}
			st, err := store.Inspect(path)
			if err == nil && st.Live && st.WriterPID == cmd.Process.Pid {
				if _, listening := proto.Listener(cmd.Process.Pid); !listening {
					cmd.Process.Signal(syscall.SIGSTOP)
					waitStopped(t, cmd.Process.Pid)
					if _, listening := proto.Listener(cmd.Process.Pid); !listening {
						second = cmd
						break
					}
				}
			}
			if _, err := os.Stat(filepath.Join(runtime, "rtm", name+".sock")); err == nil && socketAccepts(filepath.Join(runtime, "rtm", name+".sock")) {
				// Listening already: kill it and catch the next one.
				cmd.Process.Kill()
				cmd.Wait()
				break
			}
		}
	}
	client := exec.Command(rtmBin, "client", "--name", name, "-c", "show routes")
	client.Env = env
	r := runCmd(t, client, "", time.Minute)
	want := fmt.Sprintf("(rtm server --name %s runs, but pid %d does not listen yet: it is starting (its store being opened or repaired), or quitting; try again in a moment, or with --wait DURATION)", name, second.Process.Pid)
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("a client as the server starts: exit %d, stderr %q; want %q", r.code, r.stderr, want)
	}
	ls := exec.Command(rtmBin, "ls")
	ls.Env = env
	if r := runCmd(t, ls, "", time.Minute); !strings.Contains(r.stdout, fmt.Sprintf("pid %d does not listen yet", second.Process.Pid)) {
		t.Errorf("rtm ls as the server starts: %q", r.stdout)
	}
	second.Process.Signal(syscall.SIGCONT)
	client = exec.Command(rtmBin, "client", "--name", name, "--wait", "20s", "-c", "show routes")
	client.Env = env
	if r := runCmd(t, client, "", time.Minute); r.code != 0 || r.stdout != "10.1.0.0/16 dev eth0\n" {
		t.Errorf("a client once it listens: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// socketAccepts says whether a server accepts on the socket at path.
func socketAccepts(path string) bool {
	c, err := net.Dial("unixpacket", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestListAndRemoveInstances: rtm ls tells a live instance (with its pid
// and its last change), a stopped one, a crashed one and a stale socket;
// rtm rm removes what no server runs and refuses a live instance. Its
// stores are in a directory of its own (RTM_STORE_DIR): stores of the same
// uid elsewhere, in /dev/shm or in the other tests' directory, are not
// its instances.
func TestListAndRemoveInstances(t *testing.T) {
	t.Parallel()
	runtime, stores := t.TempDir(), newStoreDir(t)
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, proto.StoreDirEnv+"="+stores)
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(rtmBin, args...)
		cmd.Env = env
		return cmd
	}
	rtm := func(stdin string, args ...string) result {
		return runCmd(t, command(args...), stdin, time.Minute)
	}
	base := fmt.Sprintf("ls%d", os.Getpid())
	live, stopped, crashed, elsewhere := base+"-live", base+"-stopped", base+"-crashed", base+"-elsewhere"
	// Two other instances of this uid: one in the default store directory,
	// one in the directory of the other tests.
	decoy := base + "-decoy"
	for _, dir := range []string{"", storeDir} {
		cmd := exec.Command(rtmBin, "server", "--name", decoy, "--exit-at-eof")
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir(), proto.StoreDirEnv+"="+dir)
		if r := runCmd(t, cmd, "R,10.9.0.0/16,-,eth0\n", time.Minute); r.code != 0 {
			t.Fatalf("decoy in %q: %s", dir, r.stderr)
		}
		p := filepath.Join(cmp.Or(dir, "/dev/shm"), "rtm."+decoy)
		t.Cleanup(func() { os.Remove(p) })
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("decoy: %v", err)
		}
	}
	if r := rtm("C,10.1.0.0/16,-,eth0\n", "server", "--name", stopped, "--exit-at-eof"); r.code != 0 {
		t.Fatalf("stopped: %s", r.stderr)
	}
	srv := command("server", "--name", live)
	in, _ := srv.StdinPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	io.WriteString(in, "C,10.2.0.0/16,-,eth0\nC,02:00:00:00:00:01,10.2.0.1\n")
	crash := command("server", "--name", crashed)
	cin, _ := crash.StdinPipe()
	if err := crash.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false // below, on purpose; a test that fails before must not leave it running
	t.Cleanup(func() {
		if !killed {
			crash.Process.Kill()
			crash.Wait()
		}
	})
	io.WriteString(cin, "C,10.3.0.0/16,-,eth0\n")
	// A server whose store is not in the store directory: ls asks it.
	away := filepath.Join(t.TempDir(), "away.store")
	other := command("server", "--name", elsewhere, "--store", away)
	oin, _ := other.StdinPipe()
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	io.WriteString(oin, "C,10.4.0.0/16,-,eth0\nC,10.5.0.0/16,-,eth0\n")
	var list []proto.Instance
	state := func(name string) (proto.Instance, bool) {
		for _, i := range list {
			if i.Name == name {
				return i, true
			}
		}
		return proto.Instance{}, false
	}
	if !rtmtest.WaitFor(20*time.Second, func() bool {
		r := rtm("", "ls", "--json")
		list = nil
		json.Unmarshal([]byte(r.stdout), &list)
		l, _ := state(live)
		c, _ := state(crashed)
		e, _ := state(elsewhere)
		return l.Store != nil && l.Store.MACs == 1 && !l.Store.Changed.IsZero() && c.Store != nil && c.Store.Routes == 1 &&
			e.Store != nil && e.Store.Routes == 2 && !e.Store.Changed.IsZero()
	}) {
		t.Fatalf("rtm ls never showed the live servers' changes: %+v", list)
	}
	crash.Process.Kill() // leaves its socket file and a dirty store
	crash.Wait()
	killed = true
	r := rtm("", "ls", "--json")
	list = nil
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("rtm ls --json: %v: %q", err, r.stdout)
	}
	for name, want := range map[string]string{live: proto.StateLive, stopped: proto.StateStopped, crashed: proto.StateCrashed, elsewhere: proto.StateLive} {
		got, ok := state(name)
		if !ok || got.State != want {
			t.Errorf("%s: %+v, want state %q", name, got, want)
		}
	}
	if l, _ := state(live); l.PID != srv.Process.Pid || l.Store.Routes != 1 {
		t.Errorf("live instance: %+v (pid %d)", l, srv.Process.Pid)
	}
	if e, _ := state(elsewhere); e.PID != other.Process.Pid || e.Store.Path != away {
		t.Errorf("instance with --store %s: %+v (pid %d)", away, e, other.Process.Pid)
	}
	if c, _ := state(crashed); !strings.Contains(c.Issue, "left its socket") {
		t.Errorf("crashed instance: %+v; want its issue to say the socket was left", c)
	}
	// A generation is a 64-bit number, which jq and JavaScript round:
	// generation_hex gives it exactly, asked of a live server or read
	// from a store's header.
	for _, name := range []string{live, stopped, crashed} {
		if i, _ := state(name); i.Store == nil || i.Store.Generation == 0 || i.Store.GenerationHex != fmt.Sprintf("%016x", i.Store.Generation) {
			t.Errorf("%s: store %+v; want generation_hex to be its generation in hex", name, i.Store)
		}
	}
	info := rtm("", "client", "--name", live, "-c", "show info json")
	var fields map[string]any
	dec := json.NewDecoder(strings.NewReader(info.stdout))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		t.Fatalf("show info json: %v: %q", err, info.stdout)
	}
	if n, err := strconv.ParseUint(string(fields["generation"].(json.Number)), 10, 64); err != nil || fields["generation_hex"] != fmt.Sprintf("%016x", n) {
		t.Errorf("show info json: generation %v, generation_hex %v", fields["generation"], fields["generation_hex"])
	}
	// Its store removed under it, a live server is still live, and ls
	// says that no client can map its store (it said nothing).
	if err := os.Remove(away); err != nil {
		t.Fatal(err)
	}
	list = nil
	json.Unmarshal([]byte(rtm("", "ls", "--json").stdout), &list)
	if e, _ := state(elsewhere); e.State != proto.StateLive || !strings.Contains(e.Issue, "its store was removed while it runs: clients cannot map it") {
		t.Errorf("a live server whose store was removed: %+v; want live, saying so", e)
	}
	other.Process.Signal(syscall.SIGTERM)
	other.Wait()
	// Seen from another runtime directory (sudo, ssh), a live server's
	// socket is not where the name says: the client and ls say where it
	// is (the client said its socket had been removed).
	otherEnv := append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir(), proto.StoreDirEnv+"="+stores)
	liveSock := filepath.Join(runtime, "rtm", live+".sock")
	far := exec.Command(rtmBin, "client", "--name", live, "-c", "show info")
	far.Env = otherEnv
	if r := runCmd(t, far, "", time.Minute); r.code != 1 || !strings.Contains(r.stderr, "and listens on "+liveSock+", not on ") || !strings.Contains(r.stderr, "--socket "+liveSock+" reaches it") {
		t.Errorf("a client with another XDG_RUNTIME_DIR: exit %d, stderr %q; want where the server listens", r.code, r.stderr)
	}
	awayLs := exec.Command(rtmBin, "ls", "--json")
	awayLs.Env = otherEnv
	list = nil
	json.Unmarshal([]byte(runCmd(t, awayLs, "", time.Minute).stdout), &list)
	if l, _ := state(live); l.State != proto.StateLive || !strings.Contains(l.Issue, "it listens on "+liveSock) {
		t.Errorf("rtm ls with another XDG_RUNTIME_DIR: %+v; want live, listening on %s", l, liveSock)
	}
	// Its socket removed under it, a live server's clients cannot find
	// it by name: ls says so (it said live, and nothing more).
	if err := os.Remove(filepath.Join(runtime, "rtm", live+".sock")); err != nil {
		t.Fatal(err)
	}
	list = nil
	json.Unmarshal([]byte(rtm("", "ls", "--json").stdout), &list)
	if l, _ := state(live); l.State != proto.StateLive || !strings.Contains(l.Issue, "its socket was removed") {
		t.Errorf("a live server whose socket was removed: %+v; want live, saying so", l)
	}
	// And a client by its name says that it runs, not to start it.
	if r := rtm("", "client", "--name", live, "-c", "show info"); r.code != 1 ||
		!strings.Contains(r.stderr, "(rtm server --name "+live+" runs, pid ") || !strings.Contains(r.stderr, "but its socket was removed: a restart of the server makes it again") {
		t.Errorf("a client of a live server whose socket was removed: exit %d, stderr %q", r.code, r.stderr)
	}
	// Given another socket, the client was not looking for that one.
	if r := rtm("", "client", "--name", live, "--socket", filepath.Join(runtime, "typo.sock"), "-c", "show info"); r.code != 1 || strings.Contains(r.stderr, "runs, pid") || !strings.Contains(r.stderr, "(is a server listening on "+filepath.Join(runtime, "typo.sock")+"?)") {
		t.Errorf("a client given a socket where no server listens: exit %d, stderr %q; want no word of the server by its name", r.code, r.stderr)
	}
	if r := rtm("", "ls"); !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, live) {
		t.Errorf("rtm ls:\n%s", r.stdout)
	}
	// A file that is no socket where an instance's socket would be is
	// not a stale socket: ls says what it is, and rm removes nothing (it
	// removed the file, whatever it held).
	junkSock := filepath.Join(runtime, "rtm", base+"-junk.sock")
	if err := os.WriteFile(junkSock, []byte("data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list = nil
	json.Unmarshal([]byte(rtm("", "ls", "--json").stdout), &list)
	if j, _ := state(base + "-junk"); j.State != proto.StateBad || !strings.Contains(j.Issue, junkSock+" is not a socket") {
		t.Errorf("a file that is no socket at an instance's socket: %+v; want unusable, saying so", j)
	}
	if r := rtm("", "rm", base+"-junk"); r.code != 1 || !strings.Contains(r.stderr, junkSock+" is not a socket") || !strings.Contains(r.stderr, "removed nothing") {
		t.Errorf("rm of an instance whose socket is a file: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(junkSock); err != nil || string(b) != "data\n" {
		t.Fatalf("the file at the socket's place after rm: %q, %v; want it as it was", b, err)
	}
	os.Remove(junkSock)
	// rm: the live one is refused and kept, and so is the crashed one,
	// which a server would repair; --force removes that.
	r = rtm("", "rm", live, stopped, crashed)
	if r.code != 1 || !strings.Contains(r.stderr, "instance "+live+": a server is running it") ||
		!strings.Contains(r.stderr, "instance "+crashed+": it crashed: store ") || !strings.Contains(r.stderr, "rtm server --name "+crashed+"` repairs it") {
		t.Fatalf("rtm rm: exit %d, stderr %q", r.code, r.stderr)
	}
	r.stdout += rtm("", "rm", "--force", crashed).stdout
	for _, n := range []string{stopped, crashed} {
		if !strings.Contains(r.stdout, "removed "+filepath.Join(stores, "rtm."+n)) {
			t.Errorf("rtm rm did not remove %s: %q", n, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "removed "+filepath.Join(runtime, "rtm", crashed+".sock")) {
		t.Errorf("rtm rm left the stale socket: %q", r.stdout)
	}
	list = nil
	json.Unmarshal([]byte(rtm("", "ls", "--json").stdout), &list)
	if len(list) != 1 || list[0].Name != live {
		t.Fatalf("after rm: %+v", list)
	}
	if r := rtm("", "rm", stopped); r.code != 1 || !strings.Contains(r.stderr, "no such instance") {
		t.Fatalf("rm of a removed instance: exit %d, %q", r.code, r.stderr)
	}
	// A file that is no rtm store, where a store of that name would be,
	// is not removed as an instance unless forced.
	junk := filepath.Join(stores, "rtm.junk")
	if err := os.WriteFile(junk, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list = nil
	json.Unmarshal([]byte(rtm("", "ls", "--json").stdout), &list)
	if got, _ := state("junk"); got.State != proto.StateBad || !strings.Contains(got.Issue, "not an rtm store") {
		t.Errorf("rtm ls of a file that is no store: state %q, issue %q; want %q, saying why", got.State, got.Issue, proto.StateBad)
	}
	// A server refuses it, says how to get past it, and leaves it as it
	// was: its mode not widened for --group (it was, before the refusal),
	// nor copied to narrow it.
	for _, tc := range []struct {
		mode  os.FileMode
		group bool
	}{{0o600, true}, {0o644, false}} {
		if err := os.Chmod(junk, tc.mode); err != nil {
			t.Fatal(err)
		}
		args := []string{"server", "--name", "junk", "--exit-at-eof"}
		if tc.group {
			args = append(args, "--group")
		}
		r := rtm("", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "open store "+junk+": not an rtm store\n") || !strings.Contains(r.stderr, "`rtm rm --force junk`") {
			t.Errorf("a server on a file that is no store (%04o, --group %v): exit %d, %q", tc.mode, tc.group, r.code, r.stderr)
		}
		fi, err := os.Stat(junk)
		if body, _ := os.ReadFile(junk); err != nil || fi.Mode().Perm() != tc.mode || string(body) != "hello\n" {
			t.Errorf("the refused file: %v, %v, %q; want it as it was (%04o)", fi.Mode(), err, body, tc.mode)
		}
	}
	if r := rtm("", "rm", "junk"); r.code != 1 || !strings.Contains(r.stderr, "not an rtm store") || !strings.Contains(r.stderr, "rtm rm --force junk") {
		t.Fatalf("rm of a file that is no store: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(junk); err != nil {
		t.Fatalf("rm removed a file that is no store, unforced: %v", err)
	}
	if r := rtm("", "rm", "--force", "junk"); r.code != 0 || !strings.Contains(r.stdout, "removed "+junk) {
		t.Fatalf("rm --force of a file that is no store: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// A FIFO there is no regular file: said so (it was "illegal seek").
	fifo := filepath.Join(stores, "rtm.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(fifo)
	list = nil
	json.Unmarshal([]byte(rtm("", "ls", "--json").stdout), &list)
	if got, _ := state("fifo"); got.State != proto.StateBad || !strings.Contains(got.Issue, "not an rtm store: not a regular file") {
		t.Errorf("rtm ls of a FIFO where a store would be: state %q, issue %q; want %q, saying why", got.State, got.Issue, proto.StateBad)
	}
	if r := rtm("", "rm", "fifo"); r.code != 1 || !strings.Contains(r.stderr, "not an rtm store: not a regular file") {
		t.Errorf("rm of a FIFO where a store would be: exit %d, %q", r.code, r.stderr)
	}
}

// TestTooFewFileDescriptors: a limit on open files too low to start with
// is refused by name, before a store is made; Go's runtime died with a
// stack trace there, leaving a store that looked crashed. A limit that
// lets in fewer clients than --max-clients is warned of.
func TestTooFewFileDescriptors(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is needed: %v", err)
	}
	in := newInstance(t)
	for _, mode := range []string{"server", "client"} {
		cmd := exec.Command(prlimit, append([]string{"--nofile=10:10", rtmBin, mode}, in.flags()...)...)
		if mode == "server" {
			cmd.Args = append(cmd.Args, "--exit-at-eof")
		} else {
			cmd.Args = cmd.Args[:len(cmd.Args)-2] // a client takes no --store
		}
		r := runCmd(t, cmd, "", time.Minute)
		want := "rtm " + mode + ": the limit on open files (ulimit -n) is 10; rtm " + mode + " needs at least 16"
		if r.code != 1 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", mode, r.code, r.stderr, want)
		}
	}
	if left := shmLeftovers(in.store); len(left) > 0 {
		t.Errorf("a refused start left %v", left)
	}
	// Enough to start, too few for --max-clients: the server says so.
	cmd := exec.Command(prlimit, append([]string{"--nofile=100:100", rtmBin, "server", "--exit-at-eof", "--max-clients", "200"}, in.flags()...)...)
	want := "rtm server: warning: the limit on open files (ulimit -n) is 100: about 84 clients can connect at once, not --max-clients 200"
	if r := runCmd(t, cmd, "", time.Minute); r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("server under 100 descriptors: exit %d, stderr %q; want 0 and %q", r.code, r.stderr, want)
	}
}

// TestRelativeStorePath: a --store relative to the server's working
// directory names the same file for its clients, which run elsewhere:
// the server gives them the path made absolute.
func TestRelativeStorePath(t *testing.T) {
	in := newInstance(t)
	dir := newStoreDir(t)
	cmd := exec.Command(rtmBin, "server", "--framed", "--name", in.name, "--socket", in.socket, "--store", "lab.store")
	cmd.Dir = dir
	srv := startCmd(t, cmd)
	srv.must("C,10.1.0.0/16,-,eth0", "C,02:00:00:00:00:01,10.1.0.7")
	client := exec.Command(rtmBin, "client", "--socket", in.socket, "-c", "show routes", "-c", "lookup 02:00:00:00:00:01", "-c", "show info")
	client.Dir = t.TempDir()
	r := runCmd(t, client, "", time.Minute)
	if r.code != 0 || !strings.Contains(r.stdout, "10.1.0.0/16 dev eth0") || !strings.Contains(r.stdout, "10.1.0.7") {
		t.Fatalf("a client in another directory: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if want := filepath.Join(dir, "lab.store"); !strings.Contains(r.stdout, want) {
		t.Errorf("show info does not name the store %s:\n%s", want, r.stdout)
	}
}

// TestStoreDirEnvRefused: an RTM_STORE_DIR that is a file, or names no
// directory, is said to be wrong as such, before anything is made (it
// was reported as a lock file in it that could not be made, to be
// removed).
func TestStoreDirEnvRefused(t *testing.T) {
	in := newInstance(t)
	file := filepath.Join(t.TempDir(), "afile")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{
		file:              "rtm server: RTM_STORE_DIR=" + file + ": not a directory; it names the directory of the stores\n",
		file + "-missing": "rtm server: RTM_STORE_DIR=" + file + "-missing: stat " + file + "-missing: no such file or directory\n",
	} {
		cmd := exec.Command(rtmBin, "server", "--name", in.name, "--socket", in.socket, "--exit-at-eof")
		cmd.Env = append(os.Environ(), proto.StoreDirEnv+"="+dir)
		if r := runCmd(t, cmd, "", 20*time.Second); r.code != 2 || r.stderr != want {
			t.Errorf("RTM_STORE_DIR=%s: exit %d, stderr %q; want 2 and %q", dir, r.code, r.stderr, want)
		}
		if _, err := os.Lstat(in.socket); err == nil {
			t.Errorf("RTM_STORE_DIR=%s: the socket was made", dir)
		}
	}
}

// TestFramedFailedStartWritesNoFrame: a --framed process whose start
// fails answers none of its lines, as the README says: no frame on
// stdout, why on stderr, exit 1, or 2 for a usage error.
func TestFramedFailedStartWritesNoFrame(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	bad := filepath.Join(t.TempDir(), "bad.rtm")
	if err := os.WriteFile(bad, []byte("C,10.1.0.0/16,-,eth0\nbogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"client", "--framed", "--socket", in.socket}, 1, "connect to " + in.socket},
		{[]string{"client", "--framed", "--socket", in.socket, "--wait", "200ms"}, 1, "connect to " + in.socket},
		{append([]string{"server", "--framed", "--script", bad}, in.flags()...), 1, bad + ":2: unknown command \"bogus\""},
		{[]string{"client", "--framed", "--wait", "5x"}, 2, "invalid value \"5x\" for flag -wait"},
	} {
		r := runRTM(t, "show routes\n\n", tc.args...)
		if r.stdout != "" || r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, no frame, and %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stderr)
		}
	}
}

// TestFramedEndsWithItsInput: the end of --framed input ends the process,
// a server and a watching client too, whose plain input's end does not:
// the program driving it is done (as --help and the README say).
func TestFramedEndsWithItsInput(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	r := runRTM(t, "C,10.2.0.0/16,192.168.1.1,eth0\n", append([]string{"server", "--framed"}, in.flags()...)...)
	if r.code != 0 || r.stdout != "\x00ok\n" {
		t.Fatalf("server --framed: exit %d, stdout %q, stderr %q; want 0 and one answer", r.code, r.stdout, r.stderr)
	}
	srv := in.server()
	srv.must("C,10.3.0.0/16,192.168.1.1,eth0")
	r = runRTM(t, "", "client", "--watch", "--framed", "--socket", in.socket)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "# snapshot: 2 routes, 0 MACs") {
		t.Fatalf("client --watch --framed: exit %d, stdout %q, stderr %q; want 0 after its snapshot", r.code, r.stdout, r.stderr)
	}
}

// TestRemoveNamesTheServerHoldingItsStore: rtm rm of an instance whose
// store, kept elsewhere, a server of another name holds (repairing it
// after the crash) names that server, not the instance, as running.
func TestRemoveNamesTheServerHoldingItsStore(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	away := filepath.Join(t.TempDir(), "tables.store")
	serve := func(name string) *exec.Cmd {
		t.Helper()
		srv := h.command("server", "--name", name, "--store", away)
		in, _ := srv.StdinPipe()
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); srv.Process.Kill(); srv.Wait() })
		sock := filepath.Join(h.runtime, "rtm", name+".sock")
		if !rtmtest.WaitFor(20*time.Second, func() bool {
			st, err := store.Inspect(away)
			return err == nil && st.Live && st.WriterPID == srv.Process.Pid && socketAccepts(sock)
		}) {
			t.Fatalf("server %s with --store %s never served", name, away)
		}
		return srv
	}
	crashed := serve("lab")
	crashed.Process.Kill()
	crashed.Wait()
	other := serve("other")
	r := h.rtm("", "rm", "lab")
	want := fmt.Sprintf("instance lab: its store %s is held by pid %d, the server on %s; quit that one first", away, other.Process.Pid, filepath.Join(h.runtime, "rtm", "other.sock"))
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("rtm rm lab, its store held by server other: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
	if _, err := os.Stat(away); err != nil {
		t.Errorf("the refused rm touched the store: %v", err)
	}
}

// TestStoreElsewhereAfterACrash: a server on its name's socket with its
// store elsewhere (--store) links the store beside the socket. Killed,
// it left a socket that rtm ls called stale and nothing more, and rtm rm
// removed the socket alone: the crashed store, which only a start given
// its path repairs, was known to nobody. Now ls lists it as crashed with
// that command, rm refuses it as any crashed store and --force removes
// it and the link, a clean quit removes the link, and a start with the
// default store drops a link left by an earlier one.
func TestStoreElsewhereAfterACrash(t *testing.T) {
	t.Parallel()
	runtime, stores := t.TempDir(), newStoreDir(t)
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, proto.StoreDirEnv+"="+stores)
	rtm := func(stdin string, args ...string) result {
		cmd := exec.Command(rtmBin, args...)
		cmd.Env = env
		return runCmd(t, cmd, stdin, time.Minute)
	}
	name := fmt.Sprintf("away%d", os.Getpid())
	away := filepath.Join(t.TempDir(), "tables.store")
	link := filepath.Join(runtime, "rtm", name+".store")
	ls := func() (proto.Instance, bool) {
		t.Helper()
		r := rtm("", "ls", "--json")
		var list []proto.Instance
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("rtm ls --json: %v: %q %q", err, r.stdout, r.stderr)
		}
		for _, i := range list {
			if i.Name == name {
				return i, true
			}
		}
		return proto.Instance{}, false
	}
	// crash starts a server with its store at away, has it apply a
	// change (the store may have the route: R makes it either way), and
	// kills it.
	crash := func() {
		t.Helper()
		srv := exec.Command(rtmBin, "server", "--name", name, "--store", away)
		srv.Env = env
		var stderr bytes.Buffer
		srv.Stderr = &stderr
		in, _ := srv.StdinPipe()
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer srv.Wait()
		defer srv.Process.Kill()
		io.WriteString(in, "R,10.4.0.0/16,-,eth0\n")
		if !rtmtest.WaitFor(20*time.Second, func() bool {
			to, _ := os.Readlink(link)
			st, err := store.Inspect(away)
			return to == away && err == nil && st.Live && st.WriterPID == srv.Process.Pid && st.Routes == 1
		}) {
			i, _ := ls()
			t.Fatalf("a live server with --store %s: rtm ls says %+v (its stderr: %q)", away, i, stderr.String())
		}
	}
	crash()
	i, _ := ls()
	repair := "`rtm server --name " + name + " --store " + away + "` repairs it"
	if i.State != proto.StateCrashed || i.Store == nil || i.Store.Path != away || i.Store.Routes != 1 || !strings.Contains(i.Issue, repair) {
		t.Fatalf("after a crash with --store: rtm ls says %+v; want crashed at %s, saying %s", i, away, repair)
	}
	if r := rtm("", "rm", name); r.code != 1 || !strings.Contains(r.stderr, repair) {
		t.Errorf("rm of the crashed instance: exit %d, stderr %q; want refused, saying %s", r.code, r.stderr, repair)
	}
	if r := rtm("", "server", "--name", name, "--store", away, "--exit-at-eof"); r.code != 0 || !strings.Contains(r.stderr, "recovered") || !strings.Contains(r.stderr, "1 routes") {
		t.Fatalf("the repair: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link after a clean quit: %v; want it gone", err)
	}
	if i, ok := ls(); ok {
		t.Errorf("after a clean quit, rtm ls lists %+v; want nothing (the store is known by its path)", i)
	}
	// Crashed again, it goes with --force, link and all.
	crash()
	if r := rtm("", "rm", "--force", name); r.code != 0 || !strings.Contains(r.stdout, "removed "+away) || !strings.Contains(r.stdout, "removed "+link) {
		t.Errorf("rm --force: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{away, link} {
		if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after rm --force: %v; want it gone", f, err)
		}
	}
	// Repaired by a server of another name, the store is no crash of
	// this instance's: ls lists its socket alone, and rm removes the
	// socket and the link, not the store, which was closed cleanly.
	crash()
	t.Cleanup(func() { os.Remove(away) })
	if r := rtm("", "server", "--name", name+"-other", "--store", away, "--exit-at-eof"); r.code != 0 {
		t.Fatalf("a repair by another name: exit %d, stderr %q", r.code, r.stderr)
	}
	if i, _ := ls(); i.State != proto.StateStale || i.Store != nil {
		t.Errorf("after a repair by another name: rtm ls says %+v; want its socket alone, stale", i)
	}
	if r := rtm("", "rm", name); r.code != 0 || strings.Contains(r.stdout, away) || !strings.Contains(r.stdout, "removed "+link) {
		t.Errorf("rm after a repair by another name: exit %d, stdout %q, stderr %q; want the socket and the link removed, not the store", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(away); err != nil {
		t.Fatalf("the store repaired by another name, after rm: %v", err)
	}
	// A link to a file that is no store names no store of the instance:
	// ls lists nothing, and rm --force removes the link, not the file.
	notes := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notes, []byte("mine\n"), 0o600)
	if err := os.Symlink(notes, link); err != nil {
		t.Fatal(err)
	}
	if i, ok := ls(); ok {
		t.Errorf("a link to a file that is no store: rtm ls says %+v; want nothing", i)
	}
	if r := rtm("", "rm", "--force", name); r.code != 0 || r.stdout != "removed "+link+"\n" {
		t.Errorf("rm --force of a link to a file that is no store: exit %d, stdout %q, stderr %q; want the link alone removed", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(notes); err != nil || string(b) != "mine\n" {
		t.Fatalf("the file a link named, after rm --force: %q, %v", b, err)
	}
	// A link left by a crash is dropped by a start with the default
	// store, which says what it forgot: the instance's store is that one
	// now.
	crash()
	r := rtm("C,10.5.0.0/16,-,eth0\n", "server", "--name", name, "--exit-at-eof")
	if forgot := "instance " + name + "'s store was " + away + " until this start, which its server did not close (it crashed): rtm ls lists it no more; " + repair; r.code != 0 || !strings.Contains(r.stderr, forgot) {
		t.Fatalf("a start with the default store: exit %d, stderr %q; want it to say %q", r.code, r.stderr, forgot)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(stores, "rtm."+name)) })
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link after a start with the default store: %v; want it gone", err)
	}
	if i, _ := ls(); i.State != proto.StateStopped || i.Store == nil || i.Store.Path != filepath.Join(stores, "rtm."+name) {
		t.Errorf("after a start with the default store: rtm ls says %+v", i)
	}
	// A crash with --store beside a default store kept: ls lists the
	// default one and names the crashed one; rm removes the default
	// store and the socket, and keeps the link, the crash's only record.
	crash()
	if i, _ := ls(); i.Store == nil || i.Store.Path != filepath.Join(stores, "rtm."+name) || !strings.Contains(i.Issue, "names a crashed store elsewhere, "+away+": "+repair) {
		t.Errorf("a crash with --store beside the default store: rtm ls says %+v; want the default store, naming the crashed one", i)
	}
	if r := rtm("", "rm", name); r.code != 0 || strings.Contains(r.stdout, link) {
		t.Errorf("rm of the default store beside a crashed one elsewhere: exit %d, stdout %q, stderr %q; want the link kept", r.code, r.stdout, r.stderr)
	}
	if i, _ := ls(); i.State != proto.StateCrashed || i.Store == nil || i.Store.Path != away {
		t.Errorf("after rm of the default store: rtm ls says %+v; want the crashed store elsewhere", i)
	}
	// A start with another store whose --script fails removes the store
	// it created, and links the crashed one again: it leaves nothing
	// behind, the loss of that record included.
	bad := filepath.Join(t.TempDir(), "bad.rtm")
	os.WriteFile(bad, []byte("C,nonsense\n"), 0o600)
	other := filepath.Join(t.TempDir(), "other.store")
	if r := rtm("", "server", "--name", name, "--store", other, "--script", bad, "--exit-at-eof"); r.code == 0 || !strings.Contains(r.stderr, "removed store "+other) || !strings.Contains(r.stderr, "store is "+away+" again") {
		t.Errorf("a start whose --script fails: exit %d, stderr %q", r.code, r.stderr)
	}
	if i, _ := ls(); i.State != proto.StateCrashed || i.Store == nil || i.Store.Path != away {
		t.Errorf("after a start with another store whose --script failed: rtm ls says %+v; want the crashed store elsewhere", i)
	}
}

// TestKilledServerNotYetReaped: a server killed whose parent has not
// reaped it yet (a supervisor between its kill and its wait) is a zombie,
// which answers kill(pid, 0). rtm ls called it live, rtm rm refused it
// as running, and a client said it ran but its socket had been removed.
// It is a crash, whatever its parent does next.
func TestKilledServerNotYetReaped(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	rtm := func(args ...string) result { return h.rtm("", args...) }
	name := fmt.Sprintf("zombie%d", os.Getpid())
	t.Cleanup(func() { os.Remove(filepath.Join(h.stores, "rtm."+name)) })
	srv := h.command("server", "--name", name)
	in, _ := srv.StdinPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	defer func() {
		if !reaped {
			srv.Process.Kill()
			srv.Wait()
		}
	}()
	io.WriteString(in, "C,10.4.0.0/16,-,eth0\n")
	state := func() proto.Instance {
		var list []proto.Instance
		json.Unmarshal([]byte(rtm("ls", "--json").stdout), &list)
		for _, i := range list {
			if i.Name == name {
				return i
			}
		}
		return proto.Instance{}
	}
	if !rtmtest.WaitFor(20*time.Second, func() bool { i := state(); return i.State == proto.StateLive && i.Store != nil && i.Store.Routes == 1 }) {
		t.Fatalf("the server never showed live with its route: %+v", state())
	}
	srv.Process.Kill()
	stat := fmt.Sprintf("/proc/%d/stat", srv.Process.Pid)
	if !rtmtest.WaitFor(10*time.Second, func() bool { b, _ := os.ReadFile(stat); return strings.Contains(string(b), ") Z ") }) {
		t.Fatal("the killed server never became a zombie")
	}
	if i := state(); i.State != proto.StateCrashed {
		t.Errorf("rtm ls of a killed server not yet reaped: %+v; want crashed", i)
	}
	if r := rtm("client", "--name", name, "-c", "show info"); r.code != 1 || strings.Contains(r.stderr, "runs, pid") {
		t.Errorf("a client of a killed server not yet reaped: exit %d, stderr %q; want no word of it running", r.code, r.stderr)
	}
	if r := rtm("rm", name); r.code != 1 || !strings.Contains(r.stderr, "it crashed") {
		t.Errorf("rm of a killed server not yet reaped: exit %d, stderr %q; want it refused as crashed", r.code, r.stderr)
	}
	srv.Wait()
	reaped = true
}
