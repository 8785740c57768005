// Package store owns rtm's state: the MAC table (MAC -> IPv4 or IPv6
// address) and the routing table, kept in one mmap-backed segment file
// (under /dev/shm, or a regular file to survive a reboot). Exactly one
// server writes it through a Store; any number of clients map it
// read-only through a Reader and look MACs up without any system call or
// lock. Routes are kept in the segment only so they persist; clients get
// them over the socket and hold them in a RouteTable. The values it holds
// (entry.MAC, entry.Route) and their validation are package entry's.
//
// The segment layout is drawn in segment.go. Its invariants:
//
//   - One writer. Open takes an exclusive non-blocking write lock
//     (F_OFD_SETLK) of the lock file beside the segment (LockPath), which
//     only the writer's uid can open, and holds it until Close removes
//     the file; a second writer gets a *LockedError naming the owner's
//     pid. Not a lock of the segment alone: a reader's read lock blocks
//     a write lock, so a --group member could keep every server out. The
//     segment's own locks (its write lock and the flock an earlier rtm
//     took) are taken too where no reader holds one.
//   - Owned alone. Open maps only a regular file of its own uid, and a
//     Reader only one of the uid it is given (the server's), that group
//     and others cannot write; neither follows a symbolic link
//     (O_NOFOLLOW), nor take a file with more than one name (a hard
//     link). Both check the descriptor they then map (fstat), not the
//     path; anything else is an *UnsafeError. Nobody but that uid
//     (and root) can forge an entry or shrink the file under a mapping.
//     Open gives an existing segment Options.Perm (0600, or 0640 for a
//     group that reads), and Recovery says when that changed it. Read
//     access taken away is taken away from descriptors and mappings
//     already made too: the segment is copied to a new file with a new
//     generation, renamed into its place (Recovery.Reissued).
//   - Validated before mapped. Every opener checks magic, layout version,
//     header checksum and that the file is as long as the header says
//     before mapping past the header, so no access can fault past EOF.
//   - Published whole. A segment is built under a temporary name, fully
//     allocated with fallocate (a full file system is a clean ENOSPC, not
//     a SIGBUS), then renamed into place without replacing; of two
//     servers starting together exactly one owns the store. A published
//     segment never shrinks.
//   - Atomic words. Every shared word is a uint64 at an 8-byte aligned
//     offset, read with sync/atomic and written with sync/atomic or, on
//     the writer's hot paths, ordered.Store, which keeps the writer's
//     stores in program order without a fence for each (word.go is the
//     one place that overlays types on the mapping).
//   - No torn reads. Each MAC slot is a seqlock. A reader returns only a value
//     the writer stored for the key; a miss is trusted only if the shift
//     epoch did not move during the probe. Readers never block the
//     writer and give up after a bounded wait (ErrBusy) if the writer died
//     mid-write.
//   - Crash safe. Every change is covered by the one-entry journal in the
//     header (undo for single-slot writes, route deletes among them; redo
//     for MAC deletes, which shift entries, and flushes).
//     Open on a segment whose writer died replays it, closes any odd
//     seqlock, recounts, and verifies the result with Check; Recovery
//     reports what was done. Contents and Generation survive reopening,
//     but for a store Open reissues (Recovery.Reissued): its generation
//     is new.
//   - No eviction. A full table is ErrFull.
//
// The hot paths (MAC and route create, update and delete, LookupMAC,
// Reader.Lookup, RouteTable.Set and Match) allocate nothing on success,
// once the route table has grown to the table's size.
package store
