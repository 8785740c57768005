package repl

// Exported for the prompt tests, which live in package repl_test so that
// their TestMain can re-execute the test binary as the prompt's process.

// NewTestEngine returns the in-memory engine.
func NewTestEngine() Tables { return newMemEngine() }

// LabSetup is the script that fills the lab tables.
const LabSetup = labSetup
