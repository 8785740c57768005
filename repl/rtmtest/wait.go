package rtmtest

import "time"

// WaitFor polls cond until it holds or d has passed, and says whether it
// held. It is the tests' one way to wait for another process or
// goroutine: the caller says what failed. It polls every 10 ms for the
// first half second, then every 50 ms: a cond that runs a program (ip,
// vtysh) costs milliseconds of CPU, and the waits that last, for BGP
// sessions and daemons, take seconds.
func WaitFor(d time.Duration, cond func() bool) bool {
	start := time.Now()
	for deadline := start.Add(d); ; {
		if cond() {
			return true
		}
		now := time.Now()
		if now.After(deadline) {
			return false
		}
		if now.Sub(start) < 500*time.Millisecond {
			time.Sleep(10 * time.Millisecond)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
}
