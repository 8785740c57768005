package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rtm/repl/rtmtest"
)

// The test binary is also the benchmark's child: the benchmark starts
// os.Executable() with `bench child ROLE ...`, as it starts rtm, and with
// `bench ...` for the interrupt test.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	// W1 and K1 to K3 run rtm itself as client and server: build it once.
	rtmtest.Main(m, nil, func() (err error) {
		rtmBin, err = rtmtest.Build()
		return err
	})
}

var rtmBin string

// tiny is a whole run of every workload at sizes that take seconds.
var tiny = []string{"--runs", "1", "--macs", "2000", "--routes", "200", "--n", "200",
	"--lookups", "200000", "--updates", "5000", "--samples", "20", "--clients", "2"}

// TestEveryWorkload runs the instrument end to end: every workload and
// limit reports, every ratio is a number, and nothing is left behind.
// Speed is never asserted.
func TestEveryWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// K3 waits seconds for its BGP sessions, not for the CPU: it runs
	// beside the rest, as a benchmark of its own in this process.
	parts := []string{"B1,B2,B3,B4,B5,B6,B7,B8,B9,W1,F1,S1,K1,K2", "K3"}
	outs := make([][]Row, len(parts))
	var wg sync.WaitGroup
	for i, only := range parts {
		wg.Go(func() {
			var out, errs strings.Builder
			args := append([]string{"--json", "--only", only, "--rtm", rtmBin, "--piped", "2000", "--framed-lines", "2000", "--kernel-routes", "300", "--frr-prefixes", "50"}, tiny...)
			if code := Main(args, &out, &errs); code != 0 {
				t.Errorf("--only %s: exit %d\n%s", only, code, errs.String())
				return
			}
			if err := json.Unmarshal([]byte(out.String()), &outs[i]); err != nil {
				t.Errorf("--only %s: %v\n%s", only, err, out.String())
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		assertNothingLeft(t, os.Getpid())
		t.FailNow()
	}
	rows := slices.Concat(outs...)
	ids := map[string]int{}
	for _, r := range rows {
		ids[r.ID]++
		if len(r.Runs) == 0 || r.Min > r.Median || r.Median > r.Max {
			t.Errorf("%s %s: median %v min %v max %v runs %v", r.ID, r.Metric, r.Median, r.Min, r.Max, r.Runs)
		}
	}
	want := []string{"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "L2", "L4", "L5", "W1", "LW1", "F1", "LF1", "S1", "LS1"}
	if kernelSkip() == "" {
		want = append(want, "K1", "LK1", "K2", "LK2")
	}
	if frrSkip() == "" {
		want = append(want, "K3", "LK3")
	}
	for _, id := range want {
		if ids[id] == 0 {
			t.Errorf("no %s row", id)
		}
	}
	withRatio := map[string]int{}
	for _, r := range rows {
		if r.LimitMetric == "" {
			continue
		}
		withRatio[r.ID]++
		if r.Limit <= 0 || r.Ratio <= 0 || len(r.RatioRuns) != len(r.Runs) {
			t.Errorf("%s %s: limit %v ratio %v ratio runs %v", r.ID, r.Metric, r.Limit, r.Ratio, r.RatioRuns)
		}
	}
	if withRatio["B2"] != 2 || withRatio["B4"] != 4 || withRatio["B5"] != 2 || withRatio["W1"] != 1 || withRatio["F1"] != 1 || withRatio["S1"] != 1 {
		t.Errorf("rows with a ratio: %v; want 2 each of B2 and B5, B4's 4 (three paths against L4, one against L4 over the copy), and W1's, F1's and S1's", withRatio)
	}
	// B2 says what its processes' CPU allows, measured in each run.
	for _, metric := range []string{"server CPU per change", "clients' CPU per change", "the bound of that CPU"} {
		i := slices.IndexFunc(rows, func(r Row) bool { return r.ID == "B2" && strings.HasPrefix(r.Metric, metric) })
		switch {
		case i < 0:
			t.Errorf("no B2 row %q", metric)
		case rows[i].Min <= 0:
			t.Errorf("B2 %s: runs %v; want each positive", rows[i].Metric, rows[i].Runs)
		}
	}
	if ids["L4"] != 2 {
		t.Errorf("%d L4 rows; want the limit over the store's own slots and over the copy", ids["L4"])
	}
	if kernelSkip() == "" && (withRatio["K1"] != 1 || withRatio["K2"] != 1) {
		t.Errorf("rows with a ratio: %v; want K1's and K2's", withRatio)
	}
	if frrSkip() == "" && withRatio["K3"] != 2 {
		t.Errorf("rows with a ratio: %v; want K3's two, --from-kernel and --from-fpm", withRatio)
	}
	assertNothingLeft(t, os.Getpid())
}

// TestClassicAgainstBaseline runs B9 as users run it with a --baseline
// (rtm itself, standing for an earlier build): both builds report the
// time and every process's CPU per change, and the speed ratio is there.
func TestClassicAgainstBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	var out, errs strings.Builder
	args := []string{"--json", "--only", "B9", "--runs", "2", "--n", "300", "--clients", "2", "--rtm", rtmBin, "--baseline", rtmBin}
	if code := Main(args, &out, &errs); code != 0 {
		t.Fatalf("exit %d\n%s", code, errs.String())
	}
	var rows []Row
	if err := json.Unmarshal([]byte(out.String()), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	has := func(id, part string) bool {
		for _, r := range rows {
			if r.ID == id && strings.Contains(r.Metric, part) && len(r.Runs) == 2 && r.Median > 0 {
				return true
			}
		}
		return false
	}
	for _, w := range []struct{ id, part string }{
		{"B9", "until sync answered, per change"}, {"B9", "server CPU per change"},
		{"B9", "client 1 CPU"}, {"B9", "client 2 CPU"}, {"B9", "speed vs"}, {"B9", "in-process"},
		{"LB9", "until sync answered, per change"}, {"LB9", "server CPU per change"}, {"LB9", "client 2 CPU"},
	} {
		if !has(w.id, w.part) {
			t.Errorf("no %s row %q with 2 runs:\n%s", w.id, w.part, out.String())
		}
	}
	assertNothingLeft(t, os.Getpid())
}

// TestInterrupt interrupts a benchmark in the middle of B4, when its
// store, its raw table and its child processes all exist, and checks
// that it removed every one of them.
func TestInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	cmd := exec.Command(os.Args[0], "bench", "--only", "B4", "--runs", "50", "--macs", "200000", "--routes", "200", "--lookups", "50000000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	raw := filepath.Join(rtmtest.StoreDir(), fmt.Sprintf("rtm-bench-%d-raw", cmd.Process.Pid))
	if !rtmtest.WaitFor(30*time.Second, func() bool {
		_, err := os.Stat(raw)
		return err == nil && len(childrenOf(cmd.Process.Pid)) >= 2
	}) {
		t.Fatalf("no raw table %s and two children within 30 s", raw)
	}
	children := childrenOf(cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the benchmark did not end within 20 s of SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "B4: interrupted") {
		t.Errorf("exit status %d after SIGINT, want 1 and a word on the interrupt; stderr:\n%s", code, stderr.String())
	}
	for _, pid := range children {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("child %d outlived the benchmark", pid)
		}
	}
	assertNothingLeft(t, cmd.Process.Pid)
}

// assertNothingLeft checks that the benchmark in process pid left no
// file in the store directory and no child process.
func assertNothingLeft(t *testing.T, pid int) {
	t.Helper()
	shm, _ := filepath.Glob(filepath.Join(rtmtest.StoreDir(), fmt.Sprintf("rtm-bench-%d-*", pid)))
	if len(shm) > 0 {
		t.Errorf("left in the store directory: %v", shm)
	}
	if pid == os.Getpid() {
		if cs := childrenOf(pid); len(cs) > 0 {
			t.Errorf("child processes left: %v", cs)
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil && strings.Contains(string(out), fmt.Sprintf("rtm-bench-%d-", pid)) {
		t.Errorf("network namespaces left:\n%s", out)
	}
}

// childrenOf lists the live processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
