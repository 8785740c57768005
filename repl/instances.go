package repl

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"rtm/proto"
)

// WriteInstances prints what rtm ls lists: a table, one instance a line,
// or one JSON array.
func WriteInstances(w io.Writer, list []proto.Instance, js bool) error {
	if js {
		if list == nil {
			list = []proto.Instance{}
		}
		b, err := json.Marshal(list)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tROUTES\tMACS\tSIZE\tCHANGED\tSTORE")
	for _, in := range list {
		pid, routes, macs, size, changed, path := "-", "-", "-", "-", "-", "-"
		if in.PID != 0 {
			pid = strconv.Itoa(in.PID)
		}
		if st := in.Store; st != nil {
			routes = fmt.Sprintf("%d/%d", st.Routes, st.RouteCapacity)
			macs = fmt.Sprintf("%d/%d", st.MACs, st.MACCapacity)
			size = storeSize(st.Bytes)
			path = st.Path
			if !st.Changed.IsZero() {
				changed = st.Changed.Format("2006-01-02 15:04:05")
			}
		}
		if in.Issue != "" {
			path += " (" + in.Issue + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.State, pid, routes, macs, size, changed, path)
	}
	return tw.Flush()
}

// storeSize is a store's size for rtm ls: in MiB, or KiB under one.
func storeSize(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
