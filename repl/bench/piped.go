package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// rtmBinary is the rtm that W1 and K1 to K3 run as rtm client and rtm
// server: --rtm, else this very binary.
func (b *bench) rtmBinary() (string, error) {
	if b.o.rtm != "" {
		return b.o.rtm, nil
	}
	return os.Executable()
}

// W1: a script of changes piped through `rtm client`, a real process
// that sends them to the server in batches, several in flight, against
// the same lines replayed on the server's own input. Each pair of runs
// starts from empty tables; the client's run ends when it exits, which
// it does once the server has answered every line and the client holds
// every change.
func (b *bench) runW1() ([]Row, error) {
	n := b.o.piped
	in, err := b.startInstance("piped", n, 1)
	if err != nil {
		return nil, err
	}
	defer b.stopInstance(in)
	f, err := b.writeFile("piped.rtm", n, macCreate)
	if err != nil {
		return nil, err
	}
	exe, err := b.rtmBinary()
	if err != nil {
		return nil, err
	}
	var viaClient, direct []float64
	for range b.o.runs {
		if err := in.flush(); err != nil {
			return nil, err
		}
		t0, err := in.replay(f)
		if err != nil {
			return nil, err
		}
		direct = append(direct, time.Since(t0).Seconds())
		if err := in.flush(); err != nil {
			return nil, err
		}
		d, err := b.throughClient(exe, in, f, nil)
		if err != nil {
			return nil, err
		}
		viaClient = append(viaClient, d)
	}
	lines := fmt.Sprintf("%s changes", count(n))
	limit := figure("LW1", lines+" on the server's own input", "s", direct)
	return []Row{
		figure("W1", lines+" piped through rtm client", "s", viaClient).against(limit).
			judge("<= 2x the server's own input", func(r Row) bool { return r.Ratio <= 2 }),
		limit,
	}, nil
}

// throughClient pipes f into `rtm client` (with args, e.g. --framed) and
// returns the seconds from its start until it exited; then the server
// must hold the file's MACs. out gets the client's stdout (nil: none).
func (b *bench) throughClient(exe string, in *instance, f file, out io.Writer, args ...string) (float64, error) {
	script, err := os.Open(f.path)
	if err != nil {
		return 0, err
	}
	defer script.Close()
	cmd := exec.CommandContext(b.ctx, exe, append([]string{"client", "--socket", in.socket, "--client-name", "bench-piped"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = script, out, b.log
	t0 := time.Now()
	err = cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("rtm client %s< %s: %w", strings.Join(append(args, ""), " "), f.path, err)
	}
	if !in.holds(f.lines, 0) {
		return 0, fmt.Errorf("after the piped script the server does not hold its %d MACs", f.lines)
	}
	return d.Seconds(), nil
}

// F1: the same lines through `rtm client --framed`, the machine
// interface (every line answered with a terminator, which this process
// reads and counts), and through a plain `rtm client`. Each run starts
// from empty tables; the order alternates run by run.
func (b *bench) runF1() ([]Row, error) {
	n := b.o.framedLines
	in, err := b.startInstance("framed", n, 1)
	if err != nil {
		return nil, err
	}
	defer b.stopInstance(in)
	f, err := b.writeFile("framed.rtm", n, macCreate)
	if err != nil {
		return nil, err
	}
	exe, err := b.rtmBinary()
	if err != nil {
		return nil, err
	}
	plain := func() (float64, error) { return b.throughClient(exe, in, f, nil) }
	framedRun := func() (float64, error) {
		var out terminators
		d, err := b.throughClient(exe, in, f, &out, "--framed")
		if err == nil && (out.ok != n || out.failed != 0) {
			err = fmt.Errorf("rtm client --framed answered %d lines ok and %d failed, want %d ok", out.ok, out.failed, n)
		}
		return d, err
	}
	var plains, frameds []float64
	for run := range b.o.runs {
		order := []*[]float64{&plains, &frameds}
		runs := []func() (float64, error){plain, framedRun}
		if run%2 == 1 {
			order[0], order[1], runs[0], runs[1] = order[1], order[0], runs[1], runs[0]
		}
		for i, r := range runs {
			if err := in.flush(); err != nil {
				return nil, err
			}
			d, err := r()
			if err != nil {
				return nil, err
			}
			*order[i] = append(*order[i], d)
		}
	}
	lines := fmt.Sprintf("%s lines", count(n))
	limit := figure("LF1", lines+" piped through a plain rtm client", "s", plains)
	return []Row{
		figure("F1", lines+" through rtm client --framed", "s", frameds).against(limit).
			judge("<= 2x plain input", func(r Row) bool { return r.Ratio <= 2 }),
		limit,
	}, nil
}

// terminators counts the framed answers in a client's stdout.
type terminators struct {
	ok, failed int
	partial    []byte // a line not ended yet
}

func (t *terminators) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.partial = append(t.partial, p...)
			break
		}
		line := p[:i]
		if len(t.partial) > 0 {
			line = append(t.partial, line...)
			t.partial = t.partial[:0]
		}
		switch {
		case string(line) == "\x00ok":
			t.ok++
		case bytes.HasPrefix(line, []byte("\x00err")):
			t.failed++
		}
		p = p[i+1:]
	}
	return n, nil
}

// S1: one change from a shell, the way an operator or a script makes one
// outside a session: `rtm client` with the line on its stdin, from its
// start until it exits (it connects, takes the snapshot, sends the line,
// has the answer and leaves). The store has the default capacities and
// a thousand MACs, a usual snapshot. The limit is the same binary's `rtm
// version`: a start and an exit that do nothing else. The runs alternate
// a create and a delete of one route, and the server must hold each.
func (b *bench) runS1() ([]Row, error) {
	const macs, each = 1000, 20
	in, err := b.startInstance("shell", 0, 0) // 0: the default capacities
	if err != nil {
		return nil, err
	}
	defer b.stopInstance(in)
	f, err := b.writeFile("shell.rtm", macs, macCreate)
	if err != nil {
		return nil, err
	}
	if _, err := in.replay(f); err != nil {
		return nil, err
	}
	exe, err := b.rtmBinary()
	if err != nil {
		return nil, err
	}
	lines := [2]string{"C,10.255.0.0/24,192.0.2.1,eth0\n", "D,10.255.0.0/24\n"}
	timed := func(stdin string, args ...string) (float64, error) {
		cmd := exec.CommandContext(b.ctx, exe, args...)
		cmd.Stdin, cmd.Stderr = strings.NewReader(stdin), b.log
		t0 := time.Now()
		out, err := cmd.Output()
		d := time.Since(t0).Seconds()
		if err != nil {
			return 0, fmt.Errorf("rtm %s: %w (%q)", strings.Join(args, " "), err, out)
		}
		return d, nil
	}
	var client, bare []float64
	for range b.o.runs {
		var c, v float64
		for i := range each {
			d, err := timed(lines[i%2], "client", "--socket", in.socket, "--client-name", "bench-shell")
			if err != nil {
				return nil, err
			}
			if !in.holds(macs, 1-i%2) {
				return nil, fmt.Errorf("after %q from rtm client the server does not hold %d MACs and %d routes", strings.TrimSpace(lines[i%2]), macs, 1-i%2)
			}
			c += d
			if d, err = timed("", "version"); err != nil {
				return nil, err
			}
			v += d
		}
		client, bare = append(client, c/each), append(bare, v/each)
	}
	limit := figure("LS1", "rtm version: the same binary's start and exit", "s", bare)
	return []Row{
		figure("S1", "one change: rtm client with the line on its stdin, from start to exit", "s", client).against(limit),
		limit,
	}, nil
}
