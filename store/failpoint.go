package store

// failpoint, when set by a test, is called at named points between the
// steps of every write to the segment, so that the test can kill the
// writer exactly there. Nil in production: crashPoint is then one
// predictable branch.
var failpoint func(name string)

// crashPoint marks a point where a killed writer must leave a segment that
// the next Open repairs.
func crashPoint(name string) {
	if failpoint != nil {
		failpoint(name)
	}
}
