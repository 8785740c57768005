package scenario

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"

	"rtm/repl"
)

// usage is `rtm test -h`. The directives are also explained, with
// examples, in scripts/seed.rtm.
const usage = `Usage: rtm test [flags] FILE|DIR...

Runs each scenario file in isolation: a fresh server on a private socket
and store, real rtm client processes as the scenario starts them, then the
scenario's lines in order. The first failing line fails the scenario. A
directory stands for the *.rtm files in it. The socket goes in a new
directory in $TMPDIR (/tmp by default), the store where stores go
($RTM_STORE_DIR, else /dev/shm); both are removed at the end.

A scenario is the command language (type help at the rtm prompt) plus
these directives:

  client start NAME          start a client process; returns once it has its
                             snapshot. While the server is down it returns at
                             once: the client waits for the server, and the
                             next server restart returns once it is connected
  client stop NAME           close its stdin: it must exit with status 0
  client kill NAME [SIGNAL]  send SIGNAL (KILL, the default, TERM, INT, QUIT or
                             ABRT) and wait until it has exited. Stop and kill
                             return once the server no longer lists the client
  client signal NAME SIGNAL  send a signal the client survives: USR1 (it drops
                             its tables and takes a fresh snapshot; returns once
                             it has it, or, while the server is down, once it
                             has asked) or HUP (ignored; returns once it answers)
  client pause NAME          SIGSTOP it; sync and expect leave it out until resumed
  client resume NAME         SIGCONT it; if it lost the server meanwhile, returns
                             once it is back (reconnected, with a snapshot)
  server kill [SIGNAL]       as client kill. KILL, QUIT and ABRT leave the clients
                             running (they keep their tables and reconnect to a
                             restarted server); TERM and INT are a clean quit,
                             which ends every client
  server signal SIGNAL       send a signal the server survives: HUP (it syncs its
                             store; returns once it says so) or USR1 (ignored;
                             returns once it answers)
  server restart [--fresh]   start the server again on the same store and socket,
                             with the tables the store holds or, with --fresh,
                             empty ones. If it is running, quit it cleanly first,
                             which ends every client. Returns once every running
                             client is back: reconnected, with a snapshot of the
                             new server's tables
  at NAME COMMAND            run COMMAND (expect, show, lookup, route, sync, or a
                             change, which the client sends to the server) at client
                             NAME only; "at server" at the server only. "at NAME
                             sync" waits until NAME alone has every change so far
                             (as sync local at a client); "at server sync" is the
                             server's own: until every client connected to it has,
                             a paused one too
  sync [TIMEOUT]             wait until every running client has applied every change
                             so far; fail after TIMEOUT (default 10s)
  expect CHECK               check at the server, then at every running client; a
                             client answers from its own copy of the tables and reads
                             a MAC's IP from the shared store. "expect count clients"
                             and "expect error" of a change run at the server only
  source FILE                run FILE's lines here (path relative to this file). A
                             FILE that holds only lines for the server (no directive,
                             expect, sync or quit, in it or in what it sources) is
                             sent to the server as one source command, which replays
                             it at the server's own speed
  quit                       end the scenario here

Every other line goes to the server. Directive words are case-insensitive.
Client names are letters, digits, '-', '_' and '.'.

Output: one line per scenario ("ok" or "FAIL", and its time); a failure
shows the failing line as FILE:LINE, what was wanted and what was found,
and the last lines the processes logged. The last line is "N passed, N
failed"; the exit status is 1 when a scenario failed, 130 if interrupted.

Flags:
`

// Main is `rtm test`: it runs the scenario files in args and reports like
// a test runner. It returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtm test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "show every line as it runs, and its output")
	run := fs.String("run", "", "run only the scenarios whose path matches `regexp`")
	timeout := fs.Duration("timeout", DefaultLineTimeout, "how long a process may take to answer one line (above 0); a sync line waits its own TIMEOUT on top (sync 1m: up to 1m more)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if rc := repl.ParseFlagsAndArgs(fs, args); rc >= 0 {
		return rc
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "rtm test: -timeout %v: want a time above 0, such as %v\n", *timeout, DefaultLineTimeout)
		return 2
	}
	var re *regexp.Regexp
	if *run != "" {
		var err error
		if re, err = regexp.Compile(*run); err != nil {
			fmt.Fprintf(stderr, "rtm test: -run: %v\n", err)
			return 2
		}
	}
	files, err := scenarioFiles(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "rtm test:", err)
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "rtm test: no scenario files; want rtm test FILE|DIR... (rtm test -h)")
		return 2
	}

	// Ctrl-C, SIGTERM or a closed terminal (SIGHUP, unless it is ignored,
	// as nohup does) ends the running scenario, which still cleans up.
	// Children are in their own process groups, so only the runner gets
	// Ctrl-C.
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	opts := Options{Timeout: *timeout, Context: ctx}
	if *verbose {
		opts.Verbose = stdout
	}
	t := tally{w: stdout}
	for _, f := range files {
		if re != nil && !re.MatchString(f) {
			continue
		}
		if *verbose {
			fmt.Fprintf(stdout, "=== RUN  %s\n", f)
		}
		t.add(Run(f, opts))
		if ctx.Err() != nil {
			break
		}
	}
	if t.passed+t.failed == 0 {
		fmt.Fprintf(stderr, "rtm test: no scenario matches -run %q\n", *run)
	}
	t.summary()
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "rtm test: interrupted")
		return 130
	case t.failed > 0:
		return 1
	}
	return 0
}

// scenarioFiles expands directories to the *.rtm files in them.
func scenarioFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "*.rtm"))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	return files, nil
}
