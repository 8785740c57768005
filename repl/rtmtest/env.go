package rtmtest

// What the environment asks of a test binary: the long variants of the
// tests, and a child's parameters.

import (
	"fmt"
	"os"
	"strconv"
)

// LongEnv names the switch of the long variants: RTM_LONG=1.
const LongEnv = "RTM_LONG"

// Long says whether RTM_LONG=1 asks for the long variants of the tests:
// the sizes that take minutes (a million MACs, hundreds of kills). The
// default sizes still break each promise a test guards when it is
// broken; the long ones look harder for what is rare.
func Long() bool { return os.Getenv(LongEnv) == "1" }

// Size is n in the default run and long under RTM_LONG=1.
func Size(n, long int) int {
	if Long() {
		return long
	}
	return n
}

// EnvInt reads the whole number a parent put in the environment variable
// name for a child (see Child). A child started without it is a bug of
// the test: it panics.
func EnvInt(name string) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return v
}
