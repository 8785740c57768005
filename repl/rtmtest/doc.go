// Package rtmtest is the test kit every rtm package's tests share, in the
// manner of bbolt's internal/btesting:
//
//   - Main, the TestMain of every package: a test binary started by Child
//     plays a role and exits; otherwise the tests run with a private
//     store directory (StoreDirEnv) made before them and removed after.
//   - Child, this test binary re-executed in a role, for tests that need
//     another process of their own code (a crashing writer, a hostile
//     client, a prompt on a terminal).
//   - Build, the rtm binary built once for a test binary; Parallel, more
//     parallel tests at once than cores where they mostly wait.
//   - WaitFor, the one wait for a condition; Long, Size and EnvInt, what
//     the environment asks for: RTM_LONG=1 for the long variants of the
//     tests, a child's parameters.
//   - WriteFiles, a tree of script files; Term, a process on a
//     pseudo-terminal.
//
// It holds no test of its own, and it imports no rtm package, so that the
// tests of every package can use it. Everything it starts or writes ends
// with the test, or with the test binary.
package rtmtest
