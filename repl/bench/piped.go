package bench

import (
	"fmt"
	"os"
	"os/exec"
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
		script, err := os.Open(f.path)
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(b.ctx, exe, "client", "--socket", in.socket, "--client-name", "bench-piped")
		cmd.Stdin, cmd.Stderr = script, b.log
		t0 = time.Now()
		err = cmd.Run()
		d := time.Since(t0)
		script.Close()
		if err != nil {
			return nil, fmt.Errorf("rtm client < %s: %w", f.path, err)
		}
		if !in.holds(n, 0) {
			return nil, fmt.Errorf("after the piped script the server does not hold its %d MACs", n)
		}
		viaClient = append(viaClient, d.Seconds())
	}
	lines := fmt.Sprintf("%s changes", count(n))
	limit := figure("LW1", lines+" on the server's own input", "s", direct)
	return []Row{
		figure("W1", lines+" piped through rtm client", "s", viaClient).against(limit).
			judge("<= 2x the server's own input", func(r Row) bool { return r.Ratio <= 2 }),
		limit,
	}, nil
}
