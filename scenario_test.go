package main

// The scenario corpus as tests: every scripts/*.rtm runs through the same
// runner as `rtm test`, against the binary TestMain built, so `go test
// ./...` (and CI) runs them all. Then the runner itself: a broken
// expectation is reported at its line, and nothing a scenario started
// outlives it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"rtm/repl"
	"rtm/repl/rtmtest"
	"rtm/repl/scenario"
)

func TestScenarios(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("scripts/*.rtm")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in scripts/: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".rtm"), func(t *testing.T) {
			var trace bytes.Buffer
			res := scenario.Run(f, scenario.Options{Binary: rtmBin, Timeout: 30 * time.Second, Verbose: &trace})
			if res.Err != nil {
				t.Fatalf("%s\nlast lines run:\n%s", res.Err, lastTraceLines(trace.String(), 20))
			}
			t.Logf("%d lines in %v", res.Lines, res.Duration.Round(time.Millisecond))
		})
	}
}

func lastTraceLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rtmTest runs `rtm test ARGS` to completion.
func rtmTest(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command(rtmBin, append([]string{"test"}, args...)...), "", 2*time.Minute)
}

func writeScenario(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBrokenExpectation: `rtm test` on a scenario with a wrong
// expectation fails, names the file and line, and shows want and got.
func TestBrokenExpectation(t *testing.T) {
	t.Parallel()
	path := writeScenario(t, "broken.rtm", `# the route is via .1; line 6 says .254
C,10.1.1.0/24,192.168.1.1,eth0
client start a
sync
expect count routes 1
expect route 10.1.1.0/24 via 192.168.1.254 dev eth0
expect count routes 1
`)
	r := rtmTest(t, path)
	if r.code != 1 {
		t.Fatalf("rtm test on a broken scenario: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"FAIL " + path + " (",
		"    " + path + ":6: at server: expect route 10.1.1.0/24 via 192.168.1.254 dev eth0\n",
		"        want: route 10.1.1.0/24 via 192.168.1.254 dev eth0\n",
		"        got:  route 10.1.1.0/24 via 192.168.1.1 dev eth0\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.HasSuffix(r.stdout, "\n0 passed, 1 failed\n") {
		t.Errorf("report does not end with the count line:\n%s", r.stdout)
	}

	// At one client only, through scenario.Run: the report names the client.
	path = writeScenario(t, "broken-client.rtm", `C,00:1a:2b:3c:4d:5e,10.1.1.7
client start a
at a expect mac 00:1a:2b:3c:4d:5e 10.1.1.8
`)
	res := scenario.Run(path, scenario.Options{Binary: rtmBin})
	var se *scenario.Error
	if !errors.As(res.Err, &se) {
		t.Fatalf("broken client expectation: %v, want a *scenario.Error", res.Err)
	}
	if se.Loc != (repl.Location{File: path, Line: 3}) || se.Where != "client a" {
		t.Errorf("failure at %v %q, want %s:3 at client a", se.Loc, se.Where, path)
	}
	if msg := res.Err.Error(); !strings.Contains(msg, "want: mac 00:1a:2b:3c:4d:5e 10.1.1.8\n") || !strings.Contains(msg, "got:  mac 00:1a:2b:3c:4d:5e 10.1.1.7\n") {
		t.Errorf("report lacks want and got:\n%s", msg)
	}

	// The same files pass when the expectations are right: the failure
	// was the expectation, not the runner.
	path = writeScenario(t, "fixed.rtm", "C,00:1a:2b:3c:4d:5e,10.1.1.7\nclient start a\nat a expect mac 00:1a:2b:3c:4d:5e 10.1.1.7\n")
	if r := rtmTest(t, path); r.code != 0 || !strings.HasSuffix(r.stdout, "1 passed, 0 failed\n") {
		t.Errorf("rtm test on a good scenario: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestScenarioByteOrderMark: a scenario, and a file it sources, saved by
// an editor that starts a UTF-8 file with a byte-order mark run as
// without it, and a failure on such a first line quotes it without.
func TestScenarioByteOrderMark(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inc := filepath.Join(dir, "routes.inc")
	if err := os.WriteFile(inc, []byte("\ufeff# routes\r\nC,10.1.1.0/24,192.168.1.1,eth0\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.rtm")
	os.WriteFile(good, []byte("\ufeffclient start a\nsource routes.inc\nsync\nat a expect count routes 1\n"), 0o644)
	comment := filepath.Join(dir, "comment.rtm")
	os.WriteFile(comment, []byte("\ufeff# a comment first\nclient start a\n"), 0o644)
	if r := rtmTest(t, good, comment); r.code != 0 || !strings.HasSuffix(r.stdout, "2 passed, 0 failed\n") {
		t.Errorf("scenarios with a byte-order mark: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(dir, "bad.rtm")
	os.WriteFile(bad, []byte("\ufeffexpect count routes 1\n"), 0o644)
	if r := rtmTest(t, bad); r.code != 1 || !strings.Contains(r.stdout, bad+":1: at server: expect count routes 1\n") {
		t.Errorf("a failing first line after a byte-order mark: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestScenarioRefusals: what a process cannot do in its state fails at
// once, at its line, saying why, instead of timing out.
func TestScenarioRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		line       int
		msg        string
	}{
		{"at-waiting", "server kill\nclient start a\nat a expect count routes 0\n", 3,
			"client a has not reached the server yet (it was started at %s:2 while the server was down), and it answers only once it has its snapshot"},
		{"stop-waiting", "server kill\nclient start a\nclient stop a\n", 3, "client a has not reached the server yet"},
		{"signal-waiting", "server kill\nclient start a\nclient signal a USR1\n", 3, "until it has, SIGUSR1 would end it"},
		{"signal-paused", "client start a\nclient pause a\nclient signal a USR1\n", 3, "client a is paused: it would act on SIGUSR1 only once resumed"},
		{"sync-server-down", "client start a\nserver kill\nsync\n", 3, "the server is not running, so no client can catch up with it: killed with SIGKILL at %s:2"},
		{"at-sync-server-down", "client start a\nserver kill\nat a sync\n", 3, "the server is not running, so client a cannot catch up with it"},
		{"at-change-server-down", "client start a\nserver kill\nat a C,10.1.0.0/16,-,eth0\n", 3, "not applied: the server is not running, so client a cannot send it the change: killed with SIGKILL at %s:2"},
		{"at-expect-error-server-down", "client start a\nserver kill\nat a expect error D,10.1.0.0/16\n", 3, "not applied: the server is not running, so client a cannot send it the change"},
		{"signal-server-down", "server kill TERM\nserver signal HUP\n", 2, "the server is not running: killed with SIGTERM"},
		{"line-too-long", "sync\n" + strings.Repeat("a", 70_000) + "\n", 2, "a line of 65536 bytes or more: no directive or command comes near it"},
		{"directive-typo", "client start a\nclinet start b\n", 2, `unknown directive or command "clinet": did you mean client? (client start|stop`},
		{"command-typo", "shwo routes\n", 1, `unknown command "shwo": did you mean show?`},
		{"signal-not-survived", "server signal TERM\n", 1, `signal "TERM": want HUP or USR1 (one rtm survives; server kill ends it)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeScenario(t, tc.name+".rtm", tc.body)
			start := time.Now()
			res := scenario.Run(path, scenario.Options{Binary: rtmBin})
			var se *scenario.Error
			if !errors.As(res.Err, &se) {
				t.Fatalf("%v, want a *scenario.Error", res.Err)
			}
			msg := tc.msg
			if strings.Contains(msg, "%s") {
				msg = fmt.Sprintf(msg, path)
			}
			if se.Loc.Line != tc.line || !strings.Contains(se.Msg, msg) {
				t.Errorf("failed at line %d: %q\nwant line %d: %q", se.Loc.Line, se.Msg, tc.line, msg)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v: a refusal should be at once", d)
			}
		})
	}
}

// TestAtServerSyncWaitsForPaused: sync leaves a paused client out;
// `at server sync` is the server's own, which waits for every client it
// has, and when it times out the report says which of them the scenario
// paused.
func TestAtServerSyncWaitsForPaused(t *testing.T) {
	t.Parallel()
	path := writeScenario(t, "paused.rtm", "client start a\nclient start b\nclient pause a\nC,10.1.1.0/24,-,eth0\nsync 10s\nat server sync 300ms\n")
	res := scenario.Run(path, scenario.Options{Binary: rtmBin})
	var se *scenario.Error
	if !errors.As(res.Err, &se) {
		t.Fatalf("%v, want a *scenario.Error", res.Err)
	}
	if se.Loc.Line != 6 || !strings.Contains(se.Msg, "1 client behind: a (pid ") || se.Hint != "a is paused: the server's own sync waits for every client it has, where sync leaves a paused one out" {
		t.Errorf("failed at line %d: %q, hint %q; want line 6, client a behind, and that the scenario paused it", se.Loc.Line, se.Msg, se.Hint)
	}
}

// TestDirectiveSlipBeforeAnything: a directive that does not parse (at's
// command, expect, sync, source and quit included), or a slip of a
// directive's name, is reported at its line before the
// scenario starts a process, not once the lines before it have run and
// their output has buried it; in a sourced file, before its first line.
func TestDirectiveSlipBeforeAnything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		body, inc string
		line      int
		msg       string
	}{
		{"client start a\nC,10.1.1.0/24,192.168.1.1,eth0\nclient strat c2\n", "", 3, `client: unknown "strat"`},
		{"client start a\nclinet start b\n", "", 2, `did you mean client?`},
		{"C,10.1.1.0/24,192.168.1.1,eth0\nsource slip.inc\n", "client start b\nclient strat c\n", 2, `client: unknown "strat"`},
		// The commands the scenario runs itself, and at's command.
		{"client start a\nexpect rout 10.1.0.0/16\nclient strat b\n", "", 2, `expect: unknown check "rout"; did you mean route?`},
		{"client start a\nsync 5 s\n", "", 2, `sync: `},
		{"client start a\nat a source x.inc\n", "", 2, `at: want one command such as expect`},
		{"client start a\nat a expect bogus\n", "", 2, `expect: `},
		{"client start a\nquit now\n", "", 2, `quit`},
		{"client start a\nsource\n", "", 2, `source`},
		// Slips of their names, which would go to the server as commands.
		{"client start a\nexpec count routes 1\n", "", 2, `unknown directive or command "expec": did you mean expect?`},
		{"client start a\nsyncc\n", "", 2, `did you mean sync?`},
		{"client start a\nsourc x.inc\n", "", 2, `did you mean source?`},
	} {
		path := filepath.Join(dir, "slip.rtm")
		os.WriteFile(path, []byte(tc.body), 0o644)
		os.WriteFile(filepath.Join(dir, "slip.inc"), []byte(tc.inc), 0o644)
		var trace bytes.Buffer
		res := scenario.Run(path, scenario.Options{Binary: rtmBin, Verbose: &trace})
		var se *scenario.Error
		if !errors.As(res.Err, &se) || se.Loc.Line != tc.line || !strings.Contains(se.Msg, tc.msg) {
			t.Fatalf("%q: %v, want a failure at line %d: %q", tc.body, res.Err, tc.line, tc.msg)
		}
		ran := ": client start"
		if tc.inc != "" {
			ran = "slip.inc:1:"
		}
		if strings.Contains(trace.String(), ran) {
			t.Errorf("%q: lines before the slip ran first:\n%s", tc.body, trace.String())
		}
	}
}

// TestSourceSentWhole: a sourced file of server lines goes to the server
// as one command; a line the server refuses in it, or in a file it
// sources, is reported at that line as if run line by line, and a
// client's failed expectation after it names its last change.
func TestSourceSentWhole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("routes.inc", "C,10.1.1.0/24,192.168.1.1,eth0\nsource more.inc\n")
	write("more.inc", "# more\nC,10.1.2.0/24,192.168.1.1,eth0\nD,10.9.0.0/16   # not there\nC,10.1.3.0/24,192.168.1.1,eth0\n")
	path := write("bad.rtm", "client start a\nsource routes.inc\n")
	var trace bytes.Buffer
	res := scenario.Run(path, scenario.Options{Binary: rtmBin, Verbose: &trace})
	var se *scenario.Error
	if !errors.As(res.Err, &se) {
		t.Fatalf("%v, want a *scenario.Error", res.Err)
	}
	if want := (repl.Location{File: filepath.Join(dir, "more.inc"), Line: 3}); se.Loc != want || se.Where != "server" || se.Text != "D,10.9.0.0/16" {
		t.Errorf("failure at %v %q %q, want %v at server: D,10.9.0.0/16\n%s", se.Loc, se.Where, se.Text, want, res.Err)
	}
	if !strings.Contains(trace.String(), "routes.inc: 5 lines for the server alone: sent as one source command") {
		t.Errorf("the file was not sent whole:\n%s", trace.String())
	}

	write("routes.inc", "C,10.1.1.0/24,192.168.1.1,eth0\nsource more.inc\n")
	write("more.inc", "C,10.1.2.0/24,192.168.1.1,eth0\n")
	path = write("hint.rtm", "client start a\nsource routes.inc\nat a expect route 10.1.2.0/24 via 192.168.9.9\n")
	res = scenario.Run(path, scenario.Options{Binary: rtmBin})
	if !errors.As(res.Err, &se) {
		t.Fatalf("%v, want a *scenario.Error", res.Err)
	}
	if want := "client a has not synced since the change at " + filepath.Join(dir, "more.inc") + ":1"; !strings.HasPrefix(se.Hint, want) {
		t.Errorf("hint %q, want %q", se.Hint, want)
	}
}

// A scenario that blocks until interrupted: b is paused, so a sync at the
// server waits for it.
const blockedScenario = `client start a
client start b
client pause b
C,10.1.1.0/24,192.168.1.1,eth0
at server sync 60s
`

// TestScenarioLongTMPDIR: rtm test makes its socket in $TMPDIR; one too
// long for a socket's path is refused before a server starts, naming
// TMPDIR (the server's own advice named flags rtm test sets itself), and
// nothing is left there.
func TestScenarioLongTMPDIR(t *testing.T) {
	t.Parallel()
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	path := writeScenario(t, "a.rtm", "C,10.1.0.0/16,192.168.1.1,eth0\n")
	cmd := exec.Command(rtmBin, "test", path)
	cmd.Env = append(os.Environ(), "TMPDIR="+long)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "set TMPDIR to a shorter one") || strings.Contains(string(out), "--socket") {
		t.Fatalf("rtm test with a long TMPDIR: exit %d (%v): %s", code, err, out)
	}
	if left, _ := os.ReadDir(long); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}

// TestScenarioCleanup: nothing a scenario started remains after it, when
// it fails with a paused client, when `rtm test` is interrupted (Ctrl-C),
// and, for the processes, when the runner is killed outright; the next
// run sweeps what such a runner left.
func TestScenarioCleanup(t *testing.T) {
	// Not parallel: it counts the processes and files of every scenario
	// this test binary runs, which the other tests' would join.
	me := os.Getpid()
	t.Run("failed", func(t *testing.T) {
		path := writeScenario(t, "fail.rtm", "client start a\nclient start b\nclient pause b\nexpect count routes 1\n")
		res := scenario.Run(path, scenario.Options{Binary: rtmBin})
		if res.Err == nil {
			t.Fatal("scenario passed; want it to fail at line 4")
		}
		assertRunnerCleanedUp(t, me)
	})
	t.Run("canceled", func(t *testing.T) {
		path := writeScenario(t, "blocked.rtm", blockedScenario)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan scenario.Result)
		go func() { done <- scenario.Run(path, scenario.Options{Binary: rtmBin, Context: ctx}) }()
		waitRunnerProcs(t, me, 3)
		cancel()
		res := <-done
		if !errors.Is(res.Err, context.Canceled) {
			t.Errorf("canceled scenario: %v, want context.Canceled", res.Err)
		}
		assertRunnerCleanedUp(t, me)
	})
	// Ctrl-C, kill's default and a closed terminal all end a run the same
	// way.
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			path := writeScenario(t, "blocked.rtm", blockedScenario)
			cmd := exec.Command(rtmBin, "test", path)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			waitRunnerProcs(t, cmd.Process.Pid, 3)
			cmd.Process.Signal(sig)
			cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Errorf("interrupted rtm test: exit %d, want 130\n%s%s", code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), "FAIL "+path) || !strings.Contains(out.String(), "interrupted") {
				t.Errorf("interrupted rtm test does not report it:\n%s", out.String())
			}
			assertRunnerCleanedUp(t, cmd.Process.Pid)
		})
	}
	t.Run("SIGKILL", func(t *testing.T) {
		path := writeScenario(t, "blocked.rtm", blockedScenario)
		cmd := exec.Command(rtmBin, "test", path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runner := cmd.Process.Pid
		waitRunnerProcs(t, runner, 3)
		cmd.Process.Kill()
		cmd.Wait()
		// The children die with their parent (the paused one too) ...
		waitRunnerProcs(t, runner, 0)
		// ... and the next run removes the socket and store it left.
		if len(runnerLeftovers(runner)) == 0 {
			t.Fatal("a killed runner left nothing behind; this test no longer tests the sweep")
		}
		ok := writeScenario(t, "ok.rtm", "expect count routes 0\n")
		if r := rtmTest(t, ok); r.code != 0 {
			t.Fatalf("rtm test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if l := runnerLeftovers(runner); len(l) != 0 {
			t.Errorf("left by the killed runner, not swept: %v", l)
		}
	})
}

// procs returns the live processes a runner started: their command lines
// name its private socket directory, rtm-test-PID-N.
func runnerProcs(runner int) []string {
	marker := []byte(fmt.Sprintf("rtm-test-%d-", runner))
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, marker) {
			out = append(out, e.Name()+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return out
}

// leftovers returns a runner's stores and socket directories.
func runnerLeftovers(runner int) []string {
	shm, _ := filepath.Glob(filepath.Join(storeDir, fmt.Sprintf("rtm-test-%d-*", runner)))
	tmp, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("rtm-test-%d-*", runner)))
	return append(shm, tmp...)
}

// waitProcs waits until a runner has exactly n processes.
func waitRunnerProcs(t *testing.T, runner, n int) {
	t.Helper()
	var p []string
	if !rtmtest.WaitFor(15*time.Second, func() bool { p = runnerProcs(runner); return len(p) == n }) {
		t.Fatalf("runner %d has %d processes, want %d: %v", runner, len(p), n, p)
	}
}

func assertRunnerCleanedUp(t *testing.T, runner int) {
	t.Helper()
	if p := runnerProcs(runner); len(p) != 0 {
		t.Errorf("processes left running: %v", p)
	}
	if l := runnerLeftovers(runner); len(l) != 0 {
		t.Errorf("stores or sockets left: %v", l)
	}
}

// TestScenarioFromAPipe: a scenario read from a pipe (rtm test
// /dev/stdin) is read once, by its run: a check of its directives ahead
// of it would take every line and leave the run none, which passes.
func TestScenarioFromAPipe(t *testing.T) {
	t.Parallel()
	r := runRTM(t, "client start a\nC,10.1.1.0/24,192.168.1.1,eth0\nsync\nat a expect count routes 2\n", "test", "/dev/stdin")
	if r.code != 1 || !strings.Contains(r.stdout, "/dev/stdin:4: at a expect count routes 2") || !strings.Contains(r.stdout, "0 passed, 1 failed") {
		t.Fatalf("a failing scenario through a pipe: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestSourceFIFO: a FIFO given to source is read once its writer comes,
// and a wait for one that never does ends at SIGTERM, with what a run
// started removed: the open waited for good before, out of reach of every
// signal but SIGKILL, at a server and in `rtm test`.
func TestSourceFIFO(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "lines.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t)
	srv := in.server()
	go func() {
		time.Sleep(200 * time.Millisecond)
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.WriteString("C,10.9.0.0/16,-,eth0\n")
			w.Close()
		}
	}()
	srv.must("source " + fifo)
	if got := srv.must("show routes"); got != "10.9.0.0/16 dev eth0\n" {
		t.Fatalf("after source of a FIFO its writer wrote to: %q", got)
	}

	// No writer, the server's input piped with more lines after: a
	// client's change goes out meanwhile (the replay held it behind the
	// waiting source, and the client waited a minute for its own copy),
	// and SIGTERM ends the wait, as it ends the server.
	cmd := exec.Command(rtmBin, "server", "--name", in.name, "--socket", in.socket, "--store", in.store, "--exit-at-eof")
	cmd.Stdin = strings.NewReader("source " + fifo + "\nshow routes\n")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	srv.send("quit")
	srv.wait(10 * time.Second)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if !rtmtest.WaitFor(10*time.Second, func() bool { _, err := os.Stat(in.socket); return err == nil }) {
		t.Fatalf("the piped server never listened: %s", errb.String())
	}
	time.Sleep(200 * time.Millisecond) // at the source
	if r := runCmd(t, exec.Command(rtmBin, "client", "--socket", in.socket, "-c", "C,10.8.0.0/16,-,eth1"), "", 15*time.Second); r.code != 0 {
		t.Fatalf("a client's change beside a source waiting for its writer: exit %d, stderr %q", r.code, r.stderr)
	}
	termWithin(t, cmd, "a server waiting for a FIFO's writer", &errb)

	path := writeScenario(t, "fifo.rtm", "client start a\nsource "+fifo+"\n")
	run := exec.Command(rtmBin, "test", path)
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill()
	waitRunnerProcs(t, run.Process.Pid, 2)
	time.Sleep(300 * time.Millisecond)
	termWithin(t, run, "rtm test waiting for a FIFO's writer", &out)
	if code := run.ProcessState.ExitCode(); code != 130 {
		t.Errorf("rtm test interrupted waiting for a FIFO: exit %d, want 130\n%s", code, out.String())
	}
	assertRunnerCleanedUp(t, run.Process.Pid)
}

// termWithin sends cmd SIGTERM and fails the test unless it has exited
// 10 s later (then it is killed); what names it, out is what it printed.
func termWithin(t *testing.T, cmd *exec.Cmd, what string, out *bytes.Buffer) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	waitCmd(t, cmd, 10*time.Second, func() string { return what + " outlived SIGTERM:\n" + out.String() })
}
