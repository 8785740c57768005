package rtmtest

import "time"

// WaitFor polls cond every 10 ms until it holds or d has passed, and says
// whether it held. It is the tests' one way to wait for another process
// or goroutine: the caller says what failed.
func WaitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
