// Package scenario is `rtm test`: it runs scenario files, which are the
// command language of package repl plus directives that start, stop,
// kill, signal, pause and restart real rtm processes, and it reports like
// a test runner.
//
// It owns the directives (their syntax, in directives.go, and what they
// do to the processes), the runner (a file's lines in order, sourced
// files, the server and client processes it drives with the framed
// protocol of package rtm/proto/framed, sync; runner.go, process.go,
// source.go) and the report (the failing line, want and got, what the
// processes logged, the ok/FAIL line of each file and the count at the
// end; report.go). The command line is Main, in main.go. It uses
// package repl only through its exported API: Parse and the Command it
// returns, Location, ErrExpect, DefaultSyncTimeout, CleanLine and
// FirstWord.
//
// Invariants:
//   - Each scenario is isolated: a fresh server on a private socket and
//     store, named after the runner's pid, and clients of its own; no
//     two scenarios share a process or a file.
//   - Every process a scenario starts is gone at its end, and its socket
//     and store are removed, whatever happened: a pass, a failure, a
//     panic, an interrupt (Options.Context, Ctrl-C). The processes run in
//     process groups of their own with Pdeathsig, so a runner that is
//     itself killed takes them along, and the next run sweeps the files
//     such a runner left.
//   - A line runs at the server, at a client, or in the runner, and the
//     next line starts only once it is done: a directive returns when
//     its effect is there (a client has its snapshot, a paused one has
//     stopped, a killed process has exited and the server has dropped
//     it, a restarted server has every running client back), so what
//     follows observes it.
//   - A failure names the line where it happened (FILE:LINE, sourced
//     files too), the process that refused it, and why.
package scenario
