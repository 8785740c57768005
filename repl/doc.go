// Package repl owns rtm's command language: parsing a line into a Command,
// running commands against an Engine (the server's tables, or a client's
// read-only view of them), replaying scripts and piped stdin, and the
// interactive prompt.
//
// Invariants:
//   - A line that is rejected, by the parser or by the engine, changes
//     nothing; the error names the line (file:line: ...), says what was
//     wrong and what was expected.
//   - Parsing a C/U/D line with IPv4 addresses does not allocate (IPv6
//     goes through net/netip): replay speed is bounded by the store, not
//     by the parser.
//   - The same commands run at the prompt, from a pipe and from a file;
//     only the error policy differs (the prompt reports and carries on,
//     a replay stops at the first error unless told to keep going).
//   - A replay (and a client's request, at the server) parses the lines
//     already waiting a group ahead of running them, to tell a Prefetcher
//     engine their MACs and prefixes, and gives a Grouper engine each run of change
//     lines among them at once; they still take effect one by one and in
//     order, exactly as line by line, and what stops the replay (an error,
//     quit, an interrupt) stops the lines parsed after it.
//   - Output written by other goroutines through a Console never garbles
//     the line being typed at the prompt.
package repl
