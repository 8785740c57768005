package framed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/repl/rtmtest"
)

// The test binary doubles as a framed process: in the role "toy" it
// serves a toy command set on its stdin and stdout.
func TestMain(m *testing.M) { rtmtest.Main(m, rtmtest.Roles{"toy": toy}, nil) }

func toy() int {
	err := Serve(os.Stdin, os.Stdout, func(line []byte, w io.Writer) (bool, error) {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
		switch cmd {
		case "":
			return false, nil
		case "echo":
			for _, l := range strings.Split(arg, ",") {
				fmt.Fprintln(w, l)
			}
			return false, nil
		case "fail":
			return false, errors.New(strings.ReplaceAll(arg, `\n`, "\n"))
		case "warn":
			fmt.Fprintln(os.Stderr, arg)
			return false, nil
		case "sleep":
			d, _ := time.ParseDuration(arg)
			time.Sleep(d)
			return false, nil
		case "exit":
			os.Exit(3)
		case "quit":
			return true, nil
		}
		return false, fmt.Errorf("unknown %q", cmd)
	})
	if errors.Is(err, ErrStopped) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T) *Proc {
	t.Helper()
	p, err := Start("toy", rtmtest.Child(t, "toy"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestTerminator(t *testing.T) {
	if got := Terminator(nil); got != "\x00ok\n" {
		t.Errorf("ok: %q", got)
	}
	if got := Terminator(errors.New("first\nsecond")); got != "\x00err\tfirst second\n" {
		t.Errorf("error with a newline: %q", got)
	}
}

func TestDriveAProcess(t *testing.T) {
	p := startChild(t)
	ctx := context.Background()
	if out, err := p.Do(ctx, "", time.Minute); err != nil || len(out) != 0 {
		t.Fatalf("readiness probe: %q, %v", out, err)
	}
	out, err := p.Do(ctx, "echo a,b,c", time.Minute)
	if err != nil || strings.Join(out, "|") != "a|b|c" {
		t.Fatalf("echo: %q, %v", out, err)
	}
	_, err = p.Do(ctx, `fail no such\nthing`, time.Minute)
	var ae *AnswerError
	if !errors.As(err, &ae) || ae.Msg != "no such thing" || ae.Proc != "toy" {
		t.Fatalf("fail: %v", err)
	}
	// Answers to lines sent without waiting are dropped; the next Do gets
	// its own answer.
	if err := p.Send("echo dropped", "fail dropped too", "warn to stderr"); err != nil {
		t.Fatal(err)
	}
	if out, err := p.Do(ctx, "echo mine", time.Minute); err != nil || strings.Join(out, "|") != "mine" {
		t.Fatalf("after Send: %q, %v", out, err)
	}
	if !strings.Contains(p.Stdout(), "dropped\n") || !strings.Contains(p.Stdout(), "mine\n") || strings.Contains(p.Stdout(), "\x00") {
		t.Fatalf("stdout record: %q", p.Stdout())
	}
	// Stderr is read apart from stdout: the line may come after the
	// answer to the next command.
	rtmtest.WaitFor(10*time.Second, func() bool { return p.StderrTail(5, "") == "to stderr" })
	if got := p.StderrTail(5, ""); got != "to stderr" {
		t.Fatalf("stderr tail: %q", got)
	}
	if got := p.StderrTail(5, "to "); got != "" {
		t.Fatalf("stderr tail without the skipped line: %q", got)
	}
	_, err = p.Do(ctx, "sleep 1s", 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow answer: %v", err)
	}
	if _, err := p.Do(ctx, "quit", time.Minute); err != nil {
		t.Fatalf("quit: %v", err)
	}
	if err := p.Wait(ctx, 10*time.Second); err != nil || p.ExitCode() != 0 {
		t.Fatalf("exit after quit: %v, %s", err, p.Status())
	}
}

func TestExitInsteadOfAnswer(t *testing.T) {
	p := startChild(t)
	_, err := p.Do(context.Background(), "exit", 10*time.Second)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("exit: %v", err)
	}
	if p.ExitCode() != 3 {
		t.Fatalf("exit code %d", p.ExitCode())
	}
	p.Kill()
	p.Kill() // safe twice
}

func TestKillStoppedProcess(t *testing.T) {
	p := startChild(t)
	p.Signal(syscall.SIGSTOP)
	p.Kill()
	if !p.Exited() {
		t.Fatal("stopped process survived Kill")
	}
}

func TestBufferKeepsTheEnd(t *testing.T) {
	b := NewBuffer(8)
	b.Write([]byte("0123456789"))
	b.Write([]byte("ab"))
	if got := b.String(); got != "456789ab" {
		t.Fatalf("buffer: %q", got)
	}
}
