// Package rtmtest is what rtm's tests across packages share: the rtm
// binary built once for a test binary (Build), a tree of script files
// (WriteFiles), and a process on a pseudo-terminal (Term). It holds no
// test of its own; everything it starts or writes ends with the test or
// with the cleanup it returns.
package rtmtest
