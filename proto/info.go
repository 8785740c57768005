package proto

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ClientInfo is what the server knows about one connected client; it is
// what `show clients` prints.
type ClientInfo struct {
	ID        uint64    `json:"id"`
	Name      string    `json:"name"`
	PID       int32     `json:"pid"` // from SO_PEERCRED, never from the hello
	UID       uint32    `json:"uid"`
	Connected time.Time `json:"connected"`
	Acked     uint64    `json:"acked"`   // last sequence number the client applied
	Lag       uint64    `json:"lag"`     // changes published but not yet acknowledged
	State     string    `json:"state"`   // "snapshot", "live", "resync"
	Writes    bool      `json:"writes"`  // may change the tables
	Changes   uint64    `json:"changes"` // changes it made
}

// Stat is one named counter of `show stats`.
type Stat struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// ServerInfo describes a running server: what `show info` prints and the
// start-up banner says.
type ServerInfo struct {
	Name       string    `json:"name"`
	Version    string    `json:"version"` // rtm's
	PID        int       `json:"pid"`
	Protocol   int       `json:"protocol"`
	Started    time.Time `json:"started"`
	Socket     string    `json:"socket"`
	Store      string    `json:"store"`
	StoreState string    `json:"store_state"` // created, reopened, or recovered: what was repaired; then a mode the start changed
	// StoreRemoved: the store's file was removed while the server runs
	// (not by --unlink): no client can map it.
	StoreRemoved bool   `json:"store_removed,omitempty"`
	StoreBytes   int    `json:"store_bytes"`
	Generation   uint64 `json:"generation"`
	// GenerationHex is Generation as rtm prints it, for JSON readers that
	// round a number past 2^53 (jq, JavaScript); the number stays for
	// the rtm that reads it.
	GenerationHex string `json:"generation_hex,omitempty"`
	Routes        int    `json:"routes"`
	RouteCapacity int    `json:"route_capacity"`
	MACs          int    `json:"macs"`
	MACCapacity   int    `json:"mac_capacity"`
	Changes       uint64 `json:"changes"` // sequence number of the last change
	// Changed is when the tables last changed, as the store marks it
	// (once a second at most); zero if never.
	Changed  time.Time `json:"changed,omitzero"`
	LogBytes int       `json:"log_bytes"` // memory bound of the change log
	Clients  int       `json:"clients"`
	// KernelImport is the kernel table the server's routes come from
	// (--from-kernel, or --from-fpm from a zebra of that namespace), if
	// they do.
	KernelImport *KernelTable `json:"kernel_import,omitempty"`
	// FPM is the server's FPM listener (--from-fpm) and the zebra
	// connected to it, if it listens.
	FPM *FPMState `json:"fpm,omitempty"`
}

// FPMState is a --from-fpm server's listener and its zebra.
type FPMState struct {
	Listen string `json:"listen"`          // the address zebra connects to
	Zebra  string `json:"zebra,omitempty"` // the connected zebra's address; "" if none
	// Since is when that zebra connected; when the last one left if
	// none is connected; zero if none ever did.
	Since time.Time `json:"since,omitzero"`
	// Replaying says the connected zebra's replay of its table has not
	// ended yet: routes it has not sent again may still go.
	Replaying bool `json:"replaying,omitempty"`
	// Held is how many routes of the server's store (a restart's) wait
	// for the end of the first zebra's replay: those it does not send go.
	Held int `json:"held,omitempty"`
}

// KernelTable names one routing table of one network namespace: the
// namespace by the inode of its nsfs file (/proc/PID/ns/net), which is
// the same for every process in it.
type KernelTable struct {
	NetNS uint64 `json:"netns"`
	// NetNSName is the name ip netns gave the namespace (its bind mount
	// in /run/netns), if it has one, as the server found it when asked.
	NetNSName string `json:"netns_name,omitempty"`
	Table     uint32 `json:"table"`
	// Source is how the routes come: "kernel" (--from-kernel, which takes
	// the namespace's neighbours too) or "fpm" (--from-fpm, from a zebra
	// in that namespace, which takes the kernel's routes of its table).
	Source string `json:"source,omitempty"`
}

// StatsOf converts the counters of another part of rtm (the kernel
// bridge's), of a type with the same fields, for AddStats.
func StatsOf[S ~struct {
	Name  string
	Value uint64
}](ks []S) []Stat {
	out := make([]Stat, len(ks))
	for i, k := range ks {
		out[i] = Stat(k)
	}
	return out
}

// statSources are counters other parts of rtm add to Stats (the kernel
// bridge's), each under a name prefix.
type statSources struct {
	mu      sync.Mutex
	sources []statSource
}

type statSource struct {
	prefix string
	f      func() []Stat
}

func (s *statSources) add(prefix string, f func() []Stat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources = append(s.sources, statSource{prefix, f})
}

func (s *statSources) append(stats []Stat) []Stat {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range s.sources {
		for _, st := range src.f() {
			stats = append(stats, Stat{src.prefix + st.Name, st.Value})
		}
	}
	return stats
}

// netnsName is the name ip netns gave this process's network namespace,
// of inode ino (its bind mount in /run/netns, the same nsfs device and
// inode), or "" if it has none or ino is another namespace's.
func netnsName(ino uint64) string {
	var self unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/net", &self) != nil || self.Ino != ino {
		return ""
	}
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return ""
	}
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/run/netns", e.Name()), &st) == nil && st.Ino == self.Ino && st.Dev == self.Dev {
			return e.Name()
		}
	}
	return ""
}
