// Package bench is `rtm bench`: it runs the performance workloads of the
// targets (B1–B9, W1, F1, S1, K1–K3), measures this machine's own limits
// beside them, and reports every workload next to its target and, where
// a limit bounds it, as a ratio to that limit. The package owns the instrument, not
// what it measures: it builds rtm's server with proto.Start and rtm's
// clients with proto.Dial, exactly as `rtm server` and `rtm client` do.
//
// What it promises:
//
//   - Every workload is measured with real processes over a real socket
//     and a real shared segment. B9 runs first as users run it: rtm
//     server and rtm client processes only, fed through their stdin
//     (userpath.go), beside earlier builds given with --baseline, with
//     each process's CPU time. Elsewhere this process is the server: a
//     store sized to the workload's tables and a SOCK_SEQPACKET socket, with
//     the command language replaying generated files into it. Clients
//     are child processes of the same binary (`rtm bench child rtm`),
//     so every change crosses the socket and every lookup reads the
//     segment through a read-only mapping. Children are driven through
//     the framed protocol (framed.Proc); their figures come back as one
//     JSON line per command.
//   - Limits are measured in the same run, with the same sizes and the
//     same number of receivers, by raw programs that hold no rtm code in
//     their loops (limits.go): SEQPACKET fan-out (L2), a seqlock lookup
//     loop over the store's own MAC slots and over a copy of them (L4),
//     one-way latency to the slowest of K receivers (L5). Each limit run
//     follows the run of the workload it bounds (B4's alternate which
//     goes first), and a ratio is the median of the per-run ratios: the
//     machine's speed drifts by up to 2x from day to day, and a pair
//     measured together shares it.
//   - Nothing it creates outlives it: servers (their sockets and their
//     stores in the store directory, /dev/shm unless RTM_STORE_DIR
//     moves it), raw tables, workload files and child processes are
//     removed at the end, after an error, and on SIGINT, SIGTERM or
//     SIGHUP. Children run in process groups of their own and die with
//     the benchmark (PR_SET_PDEATHSIG) even if it is killed.
//
// Files: harness.go (flags, runs, medians, ratios, the table and the
// JSON), instance.go (a server and the workload files it replays),
// workloads.go (B1–B9), userpath.go (B9 with rtm's own processes),
// piped.go (W1, F1, S1), kernel.go (K1, K2), frr.go (K3: BGP through FRR in
// two namespaces), child.go (the child processes, both ends), limits.go
// (the raw limits).
package bench
