package repl

import (
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/chzyer/readline"
	"golang.org/x/sys/unix"
)

// What a process running a Session needs from its surroundings: whether
// a person is at a terminal, where its notices go, which signals end it,
// and where its commands come from.

// AtTerminal says whether rtm talks to a person at a terminal.
func AtTerminal() bool {
	return readline.IsTerminal(int(os.Stdin.Fd())) && readline.IsTerminal(int(os.Stdout.Fd()))
}

// inputAtTerminal says whether stdin is a terminal, whatever stdout is
// (rtm server | tee log): someone types, and Ctrl-D means they are done.
func inputAtTerminal() bool { return readline.IsTerminal(int(os.Stdin.Fd())) }

// PagedOutput says whether stdin is a terminal and stdout is not: a
// process whose output is all it does (rtm client --watch | less) then
// leaves the terminal to the pager that reads it, which takes its keys
// from the terminal too.
func PagedOutput() bool { return inputAtTerminal() && !AtTerminal() }

// ProcessConsole carries a process's asynchronous notices (clients
// connecting, changes watched): through the prompt at a terminal, else to
// stderr so that stdout holds only command results.
func ProcessConsole() *Console {
	if AtTerminal() {
		return NewConsole(os.Stdout)
	}
	return NewConsole(os.Stderr)
}

// Signals returns a channel that receives the signal that ends the
// process: SIGTERM, or SIGINT when no one is at the prompt. At the
// prompt, SIGINT is Ctrl-C while a command runs: it interrupts that
// command, as in a shell. SIGQUIT ends it at once (QuitOnSIGQUIT).
// Other signals (SIGHUP, SIGUSR1, SIGUSR2) go to onOther. Those held
// since HoldSignals are taken first, in the order they came; a SIGINT
// among them quits even at the prompt, as there was no command for it
// to interrupt: it meant to stop the start.
func Signals(in *Interp, onOther func(os.Signal)) <-chan os.Signal {
	ch := make(chan os.Signal, 4)
	quit := make(chan os.Signal, 1)
	signal.Notify(ch, handledSignals...)
	var early []os.Signal
	if hold != nil {
		early = hold.release()
		hold = nil
	}
	quitConsole.Store(in.opts.Console)
	QuitOnSIGQUIT()
	atPrompt := AtTerminal()
	go func() {
		for {
			// (One that came as Signals began may come again on ch: a
			// second quit goes nowhere, a second checkpoint is harmless.)
			var s os.Signal
			wasHeld := len(early) > 0
			if wasHeld {
				s, early = early[0], early[1:]
			} else {
				s = <-ch
			}
			switch {
			case s == syscall.SIGINT && atPrompt && !wasHeld:
				in.Interrupt()
			case s == syscall.SIGINT || s == syscall.SIGTERM:
				quit <- s
				return
			default:
				onOther(s)
			}
		}
	}()
	return quit
}

// handledSignals are the signals Signals takes.
var handledSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2}

// hold keeps the signals from HoldSignals until Signals.
var hold *heldSignals

// HoldSignals keeps the signals Signals takes from their default action
// (to end the process) until Signals takes them. A mode whose start
// makes what a quit must undo calls it first thing: a server killed by
// SIGTERM as it starts, its socket listening and its store open, left
// them as after a crash (and SIGHUP, its checkpoint, killed it too).
// The first SIGINT or SIGTERM is said, as it waits for the start to end
// (a large kernel table imported); a second ends the process at once,
// as SIGQUIT does. Without quits, only the signals that ask something
// of a running process (SIGHUP, SIGUSR1, SIGUSR2) are held, whose
// default action would end it: a client's start, a wait for its server
// among it, may still be ended by SIGINT or SIGTERM, and its SIGUSR1 as
// it starts is a resync once it runs, not its death.
func HoldSignals(quits bool) {
	sigs := handledSignals
	if !quits {
		sigs = []os.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2}
	}
	h := &heldSignals{ch: make(chan os.Signal, 8), stop: make(chan struct{}), done: make(chan struct{})}
	signal.Notify(h.ch, sigs...)
	go h.run()
	hold = h
}

type heldSignals struct {
	ch         chan os.Signal
	stop, done chan struct{}
	early      []os.Signal // run's until done is closed
}

func (h *heldSignals) run() {
	defer close(h.done)
	quits := 0
	for {
		select {
		case s := <-h.ch:
			h.early = append(h.early, s)
			if s != syscall.SIGINT && s != syscall.SIGTERM {
				continue
			}
			sig := s.(syscall.Signal)
			if quits++; quits == 1 {
				boundedWrite(os.Stderr, "rtm: "+unix.SignalName(sig)+": quitting once started ("+unix.SignalName(sig)+" again quits at once)\n")
				continue
			}
			boundedWrite(os.Stderr, "rtm: "+unix.SignalName(sig)+" again: quitting at once, as after a crash (the next server checks the store)\n")
			os.Exit(128 + int(sig))
		case <-h.stop:
			return
		}
	}
}

// release ends the hold and returns the signals it kept. Signals has
// its own channel by then: none is let go to its default action.
func (h *heldSignals) release() []os.Signal {
	signal.Stop(h.ch)
	close(h.stop)
	<-h.done
	for len(h.ch) > 0 {
		h.early = append(h.early, <-h.ch)
	}
	return h.early
}

// StdinInput reads stdin: framed, at the prompt (a terminal), or plain.
func StdinInput(framed bool) Input {
	switch {
	case framed:
		return Input{Framed: true}
	case AtTerminal():
		return Input{}
	}
	return Input{Name: "<stdin>", R: stdinReader(), Typed: inputAtTerminal()}
}

// QuitOnSIGQUIT makes SIGQUIT (kill -QUIT; Ctrl-\ at a terminal outside
// the prompt, whose raw mode reads it as a key) what it is by convention,
// an exit at once, as a crash: no goodbye, nothing synced, the store left
// for the next server to check and clients waiting for it, status 131.
// Go's runtime would also print every goroutine's stack, a few hundred
// lines at the terminal: that is left to GOTRACEBACK, for a developer who
// sets it. A mode calls it first thing, so that it holds while the mode
// starts (a store opened, a server waited for); Signals names the
// console whose terminal is put back as it was.
func QuitOnSIGQUIT() {
	quitOnce.Do(func() {
		if os.Getenv("GOTRACEBACK") != "" {
			return
		}
		// SIGABRT (kill -ABRT, a scenario's "kill ABRT") likewise: Go's
		// runtime would print the same dump for it.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGQUIT, syscall.SIGABRT)
		go func() {
			sig := (<-ch).(syscall.Signal)
			quittingAtOnce.Store(true)
			if c := quitConsole.Load(); c != nil {
				c.Close() // the terminal as it was
			}
			// Within a bound: a stderr nobody reads cannot keep it.
			boundedWrite(os.Stderr, "rtm: "+unix.SignalName(sig)+": quitting at once, as after a crash (the next server checks the store)\n")
			os.Exit(128 + int(sig))
		}()
	})
}

var (
	quitOnce    sync.Once
	quitConsole atomic.Pointer[Console]
	// quittingAtOnce is set by SIGQUIT's handler before it closes the
	// prompt, which ends the session: what follows a session's end (a
	// server's goodbye to its clients, its store marked clean) must not
	// happen in a crash (Session.Run).
	quittingAtOnce atomic.Bool
)
