package entry

// IfNames interns the interface names a reader meets in its input (the
// parser's lines, a decoder's packets): each new name is checked once
// (CheckIfName, or CheckStoredIfName for Stored) and allocated once, and
// a name met again costs neither.
// The first few sit in a slice and are found by a scan, which beats
// hashing for the handful of names a host has; past those a map takes
// over, bounded so that input of random names cannot grow memory without
// end. The zero value is ready to use; it is not safe for concurrent use.
type IfNames struct {
	// Stored says the names come from a store, as a server sends its
	// tables: held to the rules a store's names are (CheckStoredIfName),
	// so that a client takes the routes of a store an earlier rtm left
	// as the server that reopened it does. A change a client asks for
	// is held to all the rules when the server makes it. Set before the
	// first Intern: a name found again is not checked again.
	Stored bool

	few  []string
	many map[string]string
}

const (
	ifNamesScan = 8
	ifNamesMax  = 4096
)

// Intern returns the checked name spelled by b, or the check's error.
func (n *IfNames) Intern(b []byte) (string, error) {
	for _, s := range n.few {
		// Names of one length mostly differ at the end (eth0, eth1):
		// their last bytes settle most comparisons without a call.
		if len(s) == len(b) && s[len(s)-1] == b[len(b)-1] && s == string(b) {
			return s, nil
		}
	}
	if s, ok := n.many[string(b)]; ok {
		return s, nil
	}
	s := string(b)
	check := CheckIfName
	if n.Stored {
		check = CheckStoredIfName
	}
	if err := check(s); err != nil {
		return "", err
	}
	switch {
	case len(n.few) < ifNamesScan:
		n.few = append(n.few, s)
	case n.many == nil:
		n.many = make(map[string]string)
		fallthrough
	case len(n.many) < ifNamesMax:
		n.many[s] = s
	}
	return s, nil
}
