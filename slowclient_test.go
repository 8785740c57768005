package main

// A client stopped for a whole replay cannot stall the server.

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/repl/rtmtest"
)

// rssAnon reads the anonymous resident memory of a process, in KiB: the
// heap and stacks, without the shared store mapping.
func rssAnon(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssAnon:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// TestStoppedClient stops one client with SIGSTOP for a replay of route
// updates that wraps the change log past it: the other clients reach the
// end while it is still stopped, the server's anonymous memory grows by
// at most 64 MiB, and the stopped client, once continued, converges by a
// fresh snapshot: the server kept no backlog for it.
//
// By default the server's log is 1 MiB (--log-bytes) and the replay
// 300 k updates; with RTM_LONG=1, the default 16 MiB log and 4 M updates.
// 16 B per route update: either replay is three times the log and the
// megabyte the stopped client's socket buffers hold, so it falls off
// the log all the same; the long one also holds the default log's
// memory to the bound.
func TestStoppedClient(t *testing.T) {
	t.Parallel()
	n, logBytes := rtmtest.Size(300_000, 4_000_000), rtmtest.Size(1<<20, 16<<20)
	const sentinel = "02:ff:ff:ff:ff:02"
	in := newInstance(t)
	srv := in.streamServer("--log-bytes", strconv.Itoa(logBytes))
	var setup []string
	for i := range 1000 {
		setup = append(setup, fmt.Sprintf("C,10.%d.%d.0/24,192.168.0.1,eth0", i/256, i%256))
	}
	srv.send(setup...)
	// The log is whole chunks of a packet's body each, at least the bytes
	// asked for.
	info := runRTM(t, "", "client", "--socket", in.socket, "-c", "show info")
	m := regexp.MustCompile(`(?m)^log +(\d+) bytes`).FindStringSubmatch(info.stdout)
	if m == nil {
		t.Fatalf("show info has no log size: %s%s", info.stdout, info.stderr)
	}
	if got, _ := strconv.Atoi(m[1]); got < logBytes || got >= logBytes+64<<10 {
		t.Fatalf("show info of a server started with --log-bytes %d: a log of %d bytes", logBytes, got)
	}
	var others []*proc
	for i := range 3 {
		others = append(others, in.client(fmt.Sprintf("fast%d", i)))
	}
	stopped := in.client("stopped")
	for _, c := range append(others, stopped) {
		c.must("sync local")
	}
	lines := make([]string, 0, n+1)
	for i := range n {
		j := i % 1000
		lines = append(lines, fmt.Sprintf("U,10.%d.%d.0/24,192.168.%d.%d,eth%d", j/256, j%256, i/1000%256, 1+i%250, i%4))
	}
	snapshots := func() (out []int) {
		for _, c := range others {
			out = append(out, statValue(c.must("show stats local"), "snapshots"))
		}
		return out
	}
	fastOut := make([]string, len(others))
	// replay pours the updates and a last change of the sentinel into the
	// server, and times it and the running clients to the end.
	replay := func(last string) (serverDone time.Duration, fastTimes []int) {
		began := time.Now()
		<-srv.stream(append(lines, last))
		ip := last[strings.LastIndexByte(last, ',')+1:]
		if !rtmtest.WaitFor(60*time.Second, func() bool {
			r := runRTM(t, "lookup "+sentinel+"\n", "client", "--socket", in.socket, "--client-name", "probe")
			return strings.Contains(r.stdout, ip)
		}) {
			t.Fatal("the server never finished the replay")
		}
		serverDone = time.Since(began)
		for i, c := range others {
			fastOut[i] = c.must("sync local", "show routes")
			fastTimes = append(fastTimes, int(time.Since(began).Milliseconds()))
		}
		return serverDone, fastTimes
	}

	// First with all four clients reading: the reference rate.
	snaps0 := snapshots()
	refServer, refTimes := replay("C," + sentinel + ",10.9.9.1")
	snaps1 := snapshots()

	stopped.signal(syscall.SIGSTOP)
	t.Cleanup(func() { stopped.signal(syscall.SIGCONT) })
	base := rssAnon(srv.cmd.Process.Pid)
	peak := base
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, rssAnon(srv.cmd.Process.Pid))
			select {
			case <-sampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	serverDone, fastTimes := replay("U," + sentinel + ",10.9.9.2")
	snaps2 := snapshots()
	close(sampling)
	<-sampled
	if stopped.fp.Exited() {
		t.Fatal("the stopped client exited")
	}
	want := sortedLines(runRTM(t, "show routes\n", "client", "--socket", in.socket).stdout)
	for i := range others {
		assertLines(t, fmt.Sprintf("client %d", i), sortedLines(fastOut[i]), want)
	}
	growth := (peak - base) / 1024
	if growth > 64 {
		t.Errorf("server anonymous memory grew by %d MiB (from %d KiB) with a client stopped, want ≤ 64", growth, base)
	}

	stopped.signal(syscall.SIGCONT)
	cont := time.Now()
	got := sortedLines(stopped.must("sync local", "show routes"))
	converged := time.Since(cont)
	assertLines(t, "continued client", got, want)
	if snaps := statValue(stopped.must("show stats local"), "snapshots"); snaps < 2 {
		t.Errorf("the stopped client took %d snapshots: the log never wrapped past it", snaps)
	}
	srv.send("show stats", "quit")
	if code := srv.wait(20 * time.Second); code != 0 {
		t.Fatalf("server exit %d: %s", code, srv.errb.String())
	}
	resyncs := statValue(srv.out.String(), "slow_client_resyncs")
	if resyncs < 1 {
		t.Errorf("server counted %d slow-client resyncs", resyncs)
	}
	t.Logf("%d updates, all clients reading: server done in %v, the 3 others after %v ms, resynced by snapshot %v times", n, refServer.Round(time.Millisecond), refTimes, diff(snaps1, snaps0))
	t.Logf("%d updates, one client stopped: server done in %v, the 3 others after %v ms, resynced by snapshot %v times; server RssAnon %d KiB → peak %d KiB (+%d MiB); stopped client converged %v after SIGCONT (server slow_client_resyncs %d in all)",
		n, serverDone.Round(time.Millisecond), fastTimes, diff(snaps2, snaps1), base, peak, growth, converged.Round(time.Millisecond), resyncs)
}

func diff(a, b []int) []int {
	out := make([]int, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}
