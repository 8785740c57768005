package repl

import (
	"errors"
	"fmt"
	"net/netip"
	"rtm/store/entry"
	"strconv"
)

// expect evaluates an expect command against the Interp's engine and
// returns an error wrapping ErrExpect, with what was wanted and what was
// found, when the expectation does not hold.
func (in *Interp) expect(cmd *Command) error {
	if cmd.Kind != KindExpect || cmd.Expect == nil {
		return fmt.Errorf("expect: %q is not an expect command", cmd.String())
	}
	switch cmd.Expect.Check {
	case CheckRoute:
		want := "route " + string(appendRouteForm(nil, cmd.Route))
		r, ok := in.engine.GetRoute(cmd.Route.Prefix)
		if !ok {
			return unmet(want, "no route "+cmd.Route.Prefix.String())
		}
		if cmd.Route.Gateway.IsValid() && r.Gateway != cmd.Route.Gateway || cmd.Route.Dev != "" && r.Dev != cmd.Route.Dev {
			return unmet(want, "route "+string(appendRouteForm(nil, r)))
		}
	case CheckNoRoute:
		if r, ok := in.engine.GetRoute(cmd.Route.Prefix); ok {
			return unmet("no route "+cmd.Route.Prefix.String(), "route "+string(appendRouteForm(nil, r)))
		}
	case CheckMAC:
		want := "mac " + cmd.MAC.String()
		if cmd.IP.IsValid() {
			want += " " + cmd.IP.String()
		}
		ip, found, err := in.lookup(cmd.MAC)
		switch {
		case err != nil:
			return err
		case !found:
			return unmet(want, "no mac "+cmd.MAC.String())
		case cmd.IP.IsValid() && ip != cmd.IP:
			return unmet(want, "mac "+cmd.MAC.String()+" "+ip.String())
		}
	case CheckNoMAC:
		ip, found, err := in.lookup(cmd.MAC)
		if err != nil {
			return err
		}
		if found {
			return unmet("no mac "+cmd.MAC.String(), "mac "+cmd.MAC.String()+" "+ip.String())
		}
	case CheckCount:
		n := 0
		switch cmd.Table {
		case TableRoutes:
			n = len(in.engine.Routes())
		case TableMACs:
			n = len(in.engine.MACs())
		default:
			clients, err := askEngine(in, in.engine.Clients)
			if err != nil {
				return fmt.Errorf("expect: %w", err)
			}
			n = len(clients)
		}
		if n != cmd.Expect.Count {
			return unmet(count(cmd.Expect.Count, cmd.Table), count(n, cmd.Table))
		}
	case CheckError:
		return in.expectError(cmd.Expect)
	default:
		return fmt.Errorf("expect: unknown check %d", cmd.Expect.Check)
	}
	return nil
}

// unmet is a failed expectation: "expect failed: want X, got Y".
func unmet(want, got string) error {
	return fmt.Errorf("%w: want %s, got %s", ErrExpect, want, got)
}

func count(n int, t Table) string {
	s := strconv.Itoa(n) + " " + t.String()
	if n == 1 {
		s = s[:len(s)-1]
	}
	return s
}

// lookup tells "absent" from a failure to read.
func (in *Interp) lookup(m entry.MAC) (ip netip.Addr, found bool, err error) {
	ip, err = in.engine.LookupMAC(m)
	switch {
	case err == nil:
		return ip, true, nil
	case errors.Is(err, entry.ErrNotFound):
		return ip, false, nil
	}
	return ip, false, fmt.Errorf("expect: lookup %s: %w", m, err)
}

// expectError runs the command that must fail and checks that the entry
// it names is as it was. A command the parser refused has failed already.
func (in *Interp) expectError(exp *Expectation) error {
	if exp.Cmd == nil {
		return nil
	}
	before, err := in.state(exp.Cmd)
	if err != nil {
		return err
	}
	// The command's first error is the one wanted, not a failed line to
	// report and count (--keep-going): a source stops at it.
	kept := in.setKeepGoing(false)
	err = in.exec(exp.Cmd)
	in.setKeepGoing(kept)
	if err == nil {
		return fmt.Errorf("%w: want an error from %s, got success", ErrExpect, exp.Cmd)
	} else if errors.Is(err, ErrQuit) {
		return err
	}
	// The failure was wanted: at a client, the lines after this one go
	// in an epoch of their own, which the server does not skip.
	in.newEpoch()
	after, err := in.state(exp.Cmd)
	if err != nil {
		return err
	}
	if after != before {
		return fmt.Errorf("%w: want %s to fail and change nothing, got a failure that changed %s to %s", ErrExpect, exp.Cmd, before, after)
	}
	return nil
}

// state describes what a change touches, to compare before and after it.
func (in *Interp) state(cmd *Command) (string, error) {
	c := &cmd.Change
	switch {
	case !cmd.IsWrite():
		return "", nil
	case c.Op == entry.Flush:
		return count(len(in.engine.Routes()), TableRoutes) + " and " + count(len(in.engine.MACs()), TableMACs), nil
	case c.Table == entry.Routes:
		if r, ok := in.engine.GetRoute(c.Route.Prefix); ok {
			return "route " + string(appendRouteForm(nil, r)), nil
		}
		return "no route " + c.Route.Prefix.String(), nil
	}
	ip, found, err := in.lookup(c.MAC)
	if err != nil || !found {
		return "no mac " + c.MAC.String(), err
	}
	return "mac " + c.MAC.String() + " " + ip.String(), nil
}
