package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// Options says where the segment lives and, when Open creates it, how
// big it is. An existing segment keeps the capacities it was created with.
type Options struct {
	Path          string      // segment file, e.g. /dev/shm/rtm.lab, or a regular file
	Capacity      int         // MAC entries; 0 means DefaultCapacity
	RouteCapacity int         // routes; 0 means DefaultRouteCapacity
	Perm          os.FileMode // 0 means 0600
}

// Recovery says what Open found.
type Recovery struct {
	Created         bool // no segment existed; Open made a new one
	WasDirty        bool // the previous writer did not Close (it crashed or was killed)
	JournalReplayed bool // an interrupted operation was undone (a slot's write, a route delete) or completed (a MAC delete, a flush)
	Repaired        int  // slots rewritten by the repair (journaled slot, shift steps, odd seqs)
	PrevPID         int  // pid of the previous writer as recorded in the header; 0 when Created
	// PermWas is the permissions the store had when Open changed them to
	// Options.Perm (a server started with --group on a store made
	// without, or the other way round); 0 if they were already those.
	PermWas os.FileMode
	// Reissued says the store was copied to a new file in its place, as
	// the change took read access away (a member with it open or mapped
	// would go on reading the old file's later changes): the old file
	// keeps only what it held, and the generation is new.
	Reissued bool
	// Connected is how many routes an earlier rtm stored through 0.0.0.0
	// or :: that Open made connected routes, as Linux takes them.
	Connected int
	// BadGateways are routes an earlier rtm stored through a gateway that
	// no kernel forwards through (multicast, loopback, broadcast), which
	// rtm now refuses: they stay, but their lines in a dump do not
	// replay until they are updated or deleted.
	BadGateways []entry.Route
	// BadDevices are routes an earlier rtm stored through a device whose
	// name holds ',' (imported from a kernel) or byte 0xa0 (typed), which
	// rtm now refuses: they stay, but their lines in a dump do not replay
	// until they are deleted.
	BadDevices []entry.Route
}

// String summarises a recovery for the server's start-up message.
func (r Recovery) String() string {
	switch {
	case r.Created:
		return "created"
	case !r.WasDirty:
		return "clean"
	case r.JournalReplayed:
		return fmt.Sprintf("recovered: interrupted operation finished or undone, %d slots repaired, consistency check passed", r.Repaired)
	}
	return fmt.Sprintf("recovered: %d slots repaired, consistency check passed", r.Repaired)
}

// Store is the single writer of a segment. It is not safe for concurrent
// use: the server serialises calls.
type Store struct {
	path   string
	fd     int
	lock   int // holds the writer lock of the store (LockPath)
	mem    []byte
	hdr    *header
	lay    layout
	macs   []macSlot
	rslots []routeSlot

	macCount   int
	routes     RouteTable // the routes and their slots
	freeRoutes []int32    // stack of unused route slots, lowest index on top
	// untouched is where the route slots no route has used since the
	// store was created or flushed begin: they are all free, and not on
	// freeRoutes, which holds the free slots below. A new store's slots
	// are then neither read nor listed (65,536 by default), which made
	// every server's start fault in the whole route table.
	untouched int32

	gen uint64
	rec Recovery
}

// Removed reports whether the store's file was unlinked from its path
// while open (a mistaken rm; systemd-logind's RemoveIPC at logout): the
// tables then live only in this mapping, and end with it.
func (s *Store) Removed() bool {
	var st unix.Stat_t
	return s.fd >= 0 && unix.Fstat(s.fd, &st) == nil && st.Nlink == 0
}

// errRaced says another process published a segment at the path between
// our look and our rename.
var errRaced = errors.New("segment published concurrently")

// Open creates the segment at o.Path or, if one exists, takes its write
// lock, validates it, repairs what a killed writer left and loads it.
// A segment locked by a live writer gives a *LockedError. An existing
// segment must be a regular file of this process's uid that group and
// others cannot write, else *UnsafeError; it is given o.Perm.
func Open(o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("open store: empty path")
	}
	if strings.Contains(filepath.Base(o.Path), ".tmp-") {
		// Where a store is made (create): a store of that name would be
		// taken for a stale one and removed.
		return nil, fmt.Errorf("open store %s: a name with .tmp- in it is kept for the files a store is made in", o.Path)
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
	}
	if o.RouteCapacity == 0 {
		o.RouteCapacity = DefaultRouteCapacity
	}
	if o.Perm == 0 {
		o.Perm = 0o600
	}
	if o.Capacity < 0 || o.Capacity > maxCapacity {
		return nil, fmt.Errorf("open store %s: MAC capacity %d out of range 1..%d", o.Path, o.Capacity, maxCapacity)
	}
	if o.RouteCapacity < 0 || o.RouteCapacity > maxRouteCapacity {
		return nil, fmt.Errorf("open store %s: route capacity %d out of range 1..%d", o.Path, o.RouteCapacity, maxRouteCapacity)
	}
	lock, err := takeWriterLock(o.Path, true)
	if err != nil {
		return nil, err
	}
	// Temporary files of creators that died, a reissue's too: we are the
	// one writer now.
	removeStaleTemps(o.Path)
	s, err := openOrCreate(o, lock < 0)
	if err != nil {
		releaseWriterLock(o.Path, lock)
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// openOrCreate opens the segment at o.Path or creates it; strict, its own
// write lock is what admits the writer (there is no lock file).
func openOrCreate(o Options, strict bool) (*Store, error) {
	// Each retry means another process created or replaced the file under
	// us; a handful is plenty unless something is looping on the path.
	for range 8 {
		s, err := openExisting(o.Path, o.Perm, strict)
		if !isNotExist(err) {
			return s, err
		}
		s, err = create(o)
		if !errors.Is(err, errRaced) {
			return s, err
		}
	}
	return nil, fmt.Errorf("open store %s: the file keeps being replaced by another process", o.Path)
}

// LockPath is the file whose write lock admits one server to the store at
// path: .NAME.lock beside it, the server's own (mode 0600), there while a
// server holds it (and after one was killed). The lock cannot be on the
// store itself: a read lock conflicts with a write lock, and anyone who
// may read the store may take one, so with --group a member who may only
// read could keep every server out. In a directory the server may not
// write, where it can make no lock file, the store's own lock admits it.
func LockPath(path string) string {
	dir, base := filepath.Split(path)
	return filepath.Join(dir, "."+base+".lock")
}

// takeWriterLock takes the writer lock of the store at path without
// waiting and returns the descriptor that holds it: -1 where the lock
// file cannot be made (a directory the server may not write: the store's
// own lock stands in). A lock held by a live server gives a *LockedError;
// one held by no live pid (rtm rm's, or a server's that has not written
// its pid yet) is tried again for a moment. A server writes its pid in
// the file (server); rtm rm does not, so that a server starting as it
// removes the store waits for it rather than names it.
func takeWriterLock(path string, server bool) (int, error) {
	lp := LockPath(path)
	for range 50 {
		fd, err := openFD(lp, unix.O_RDWR|unix.O_CREAT, 0o600)
		if err == unix.EACCES || err == unix.EPERM || err == unix.EROFS {
			if _, serr := os.Lstat(lp); os.IsNotExist(serr) {
				return -1, nil
			}
		}
		if err != nil {
			cerr := err
			if fd, _, err = openOwned(lp, unix.O_RDWR, geteuid()); err != nil {
				if isNotExist(err) {
					// Nothing there to blame: the directory is missing,
					// or out of room or inodes.
					return -1, fmt.Errorf("create lock file %s of store %s: %w", lp, path, cerr)
				}
				return -1, lockFileError(path, lp, err)
			}
		}
		st, err := statFD(fd)
		if err == nil {
			err = checkFile(lp, &st, geteuid())
		}
		if err != nil {
			closeFD(fd)
			return -1, lockFileError(path, lp, err)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK} // the whole file
		if err := retry(func() error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk) }); err != nil {
			closeFD(fd)
			if !isLocked(err) {
				return -1, lockFileError(path, lp, err)
			}
			if pid := lockedBy(path); pid != 0 {
				return -1, &LockedError{Path: path, PID: pid}
			}
			// Held by no server that says so: one that is starting, or
			// rtm rm at work, a moment only. Try again.
			time.Sleep(2 * time.Millisecond)
			continue
		}
		// The last server removes the file as it lets go: a lock taken on
		// a file no longer at the path admits nobody.
		if same, err := sameFile(fd, lp); err != nil || !same {
			closeFD(fd)
			if err != nil {
				return -1, lockFileError(path, lp, err)
			}
			continue
		}
		// The holder's pid, for the message of the next to try.
		if err := unix.Ftruncate(fd, 0); err == nil && server {
			unix.Pwrite(fd, []byte(strconv.Itoa(getpid())), 0)
		}
		return fd, nil
	}
	return -1, &LockedError{Path: path}
}

// lockFileError says what is wrong with the lock file lp of the store at
// path, and that it holds nothing: removing it is the fix.
func lockFileError(path, lp string, err error) error {
	// A store another uid owns is the fault, not its lock file: say what
	// Open says of the store itself. (Its server may be running: then
	// the lock file is that server's, and removing it would fix nothing.)
	var sst unix.Stat_t
	if unix.Lstat(path, &sst) == nil {
		if serr := checkFile(path, &sst, geteuid()); serr != nil {
			return serr
		}
	}
	why := err.Error()
	var ue *UnsafeError
	var en unix.Errno
	switch {
	case errors.As(err, &ue):
		why = ue.Why
	case errors.As(err, &en):
		why = "cannot be used (" + en.Error() + ")"
	}
	return &UnsafeError{Path: lp, Why: why, What: "lock file",
		Fix: fmt.Sprintf("it is the lock file of store %s, which only the store's server opens and which holds nothing; have it removed (by its owner or root) and start again", path)}
}

// RemoveFiles removes the store at path with its lock file and the
// temporary files of creators that died (rtm rm), unless a server holds
// it (a *LockedError): the writer lock is held meanwhile, so no server
// opens the store as it goes. It says whether the store was there.
func RemoveFiles(path string) (bool, error) {
	lock, err := takeWriterLock(path, false)
	if err != nil {
		return false, err
	}
	defer releaseWriterLock(path, lock)
	removeStaleTemps(path)
	if err := unlink(path); err != nil {
		if isNotExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("remove store %s: %w", path, err)
	}
	return true, nil
}

// releaseWriterLock removes the lock file while its lock is still held,
// then lets go; nothing for -1.
func releaseWriterLock(path string, fd int) {
	if fd < 0 {
		return
	}
	unlink(LockPath(path))
	closeFD(fd)
}

// lockedBy is the pid of the live server that holds the store at path, for
// the error message; 0 if none says so. One that has just taken the lock
// writes its pid a moment later.
func lockedBy(path string) int {
	for range 25 {
		fd, err := openFD(LockPath(path), unix.O_RDONLY, 0)
		if err != nil {
			return 0
		}
		b := make([]byte, 20)
		n, _ := readAt(fd, b)
		closeFD(fd)
		if pid, err := strconv.Atoi(string(b[:n])); err == nil && ProcessAlive(pid) {
			return pid
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0
}

// create builds a new segment under a temporary name and publishes it
// with a rename that fails if the path exists (errRaced).
func create(o Options) (*Store, error) {
	l := newLayout(o.Capacity, o.RouteCapacity)
	tmp := tempPath(o.Path)
	fd, err := openFD(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, uint32(o.Perm.Perm()))
	if err != nil {
		return nil, fmt.Errorf("create store %s: %w", o.Path, err)
	}
	s := &Store{path: o.Path, fd: fd, lock: -1, lay: l}
	abort := func(what string, err error) (*Store, error) {
		if s.mem != nil {
			unmap(s.mem)
		}
		closeFD(fd)
		unlink(tmp)
		return nil, fmt.Errorf("create store %s: %s: %w", o.Path, what, err)
	}
	if err := setMode(fd, uint32(o.Perm.Perm())); err != nil {
		return abort("chmod", err)
	}
	if err := lockFD(fd, false); err != nil {
		return abort("lock", err)
	}
	if err := allocateFD(fd, int64(l.total)); err != nil {
		return abort(fmt.Sprintf("allocate %d bytes (%d MACs, %d routes)", l.total, l.macCap, l.routeCap), err)
	}
	if s.mem, err = mapFD(fd, l.total, true); err != nil {
		return abort("mmap", err)
	}
	s.attach()
	gen := newGeneration()
	s.hdr.pid.Store(uint64(getpid()))
	s.hdr.writeStatic(l, gen)
	s.gen = gen
	if err := syncMem(s.mem[:headerSize]); err != nil {
		return abort("msync", err)
	}
	if err := renameNoReplace(tmp, o.Path); err != nil {
		if isExist(err) {
			abort("publish", err)
			return nil, errRaced
		}
		return abort("publish", err)
	}
	s.untouchedRoutes()
	s.warmRoutes()
	s.rec = Recovery{Created: true}
	return s, nil
}

// tempPath is a name beside path to make a segment under before it is
// published there (removeStaleTemps knows it).
func tempPath(path string) string {
	return path + ".tmp-" + strconv.Itoa(getpid()) + "-" + strconv.FormatUint(rand.Uint64()&0xffffffff, 16)
}

// newGeneration is a random non-zero generation.
func newGeneration() uint64 {
	gen := rand.Uint64()
	for gen == 0 {
		gen = rand.Uint64()
	}
	return gen
}

// removeStaleTemps deletes the temporary files of creators that died
// before publishing (each can be as big as a whole segment, in memory
// under /dev/shm). A temporary file is stale when the pid in its name is
// gone and nobody holds its lock.
func removeStaleTemps(path string) {
	dir, base := filepath.Split(path)
	entries, _ := os.ReadDir(filepath.Clean(dir + "."))
	for _, e := range entries {
		rest, found := strings.CutPrefix(e.Name(), base+".tmp-")
		pid, _, ok := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if !found || !ok || err != nil || ProcessAlive(n) {
			continue
		}
		name := filepath.Join(dir, e.Name())
		// Only our own: another uid's file is not ours to judge.
		fd, _, err := openOwned(name, unix.O_RDWR, geteuid())
		if err != nil {
			continue
		}
		if lockFD(fd, false) == nil {
			unlink(name)
		}
		closeFD(fd)
	}
}

// openExisting opens and locks the segment at path, and gives it perm.
// An error for which isNotExist holds means there is none yet.
func openExisting(path string, perm os.FileMode, strict bool) (*Store, error) {
	for range 8 {
		fd, st, err := openOwned(path, unix.O_RDWR, geteuid())
		if err != nil {
			return nil, err
		}
		if err := lockFD(fd, strict); err != nil {
			if isLocked(err) {
				pid := ownerPID(fd)
				closeFD(fd)
				return nil, &LockedError{Path: path, PID: pid}
			}
			closeFD(fd)
			return nil, fmt.Errorf("open store %s: lock: %w", path, err)
		}
		same, err := sameFile(fd, path)
		if err != nil {
			closeFD(fd)
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		if !same {
			closeFD(fd) // removed or replaced while we waited: look again
			continue
		}
		// A file that is no store is left as it is: neither its mode
		// changed (--group would open someone's file to a group) nor
		// copied.
		if _, err := readLayout(fd); err != nil {
			closeFD(fd)
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		if os.FileMode(st.Mode)&0o077&^perm.Perm() != 0 {
			s, err := reissue(path, fd, perm)
			closeFD(fd)
			if err != nil {
				return nil, err
			}
			s.rec.PermWas, s.rec.Reissued = os.FileMode(st.Mode&0o777), true
			return s, nil
		}
		was, err := setPerm(fd, &st, perm)
		if err != nil {
			closeFD(fd)
			return nil, fmt.Errorf("open store %s: chmod %04o: %w", path, perm.Perm(), err)
		}
		s, err := attachExisting(path, fd)
		if err != nil {
			closeFD(fd)
			return nil, err
		}
		s.rec.PermWas = was
		return s, nil
	}
	return nil, fmt.Errorf("open store %s: the file keeps being replaced by another process", path)
}

// reissue copies the segment open on fd to a new file of mode perm,
// with a new generation, and publishes it at path in its place. Taking
// away the group's (or others') read bit is not enough: whoever has the
// store open or mapped would go on reading every later change. The old
// file, unlinked, keeps only what it held; clients of the new one see
// the generation change and map it anew.
func reissue(path string, fd int, perm os.FileMode) (*Store, error) {
	tmp := tempPath(path)
	nfd, err := openFD(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, uint32(perm.Perm()))
	if err != nil {
		return nil, fmt.Errorf("open store %s: copy to take back its readers' access: %w", path, err)
	}
	fail := func(s *Store, err error) (*Store, error) {
		if s != nil {
			unmap(s.mem)
		}
		closeFD(nfd)
		unlink(tmp)
		return nil, fmt.Errorf("open store %s: copy to take back its readers' access: %w", path, err)
	}
	if err := setMode(nfd, uint32(perm.Perm())); err != nil {
		return fail(nil, err)
	}
	if err := lockFD(nfd, false); err != nil {
		return fail(nil, err)
	}
	if err := copyFD(nfd, fd); err != nil {
		return fail(nil, err)
	}
	s, err := attachExisting(path, nfd)
	if err != nil {
		return fail(nil, err)
	}
	s.gen = newGeneration()
	s.hdr.generation.Store(s.gen)
	s.hdr.checksum.Store(staticSum(s.hdr))
	if err := syncMem(s.mem[:headerSize]); err != nil {
		return fail(s, err)
	}
	if err := unix.Rename(tmp, path); err != nil {
		return fail(s, err)
	}
	return s, nil
}

// copyFD copies every byte of the file on src to the empty file on dst,
// its blocks reserved first (allocateFD).
func copyFD(dst, src int) error {
	size, err := fileSize(src)
	if err != nil {
		return err
	}
	if err := allocateFD(dst, size); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		n, err := unix.Pread(src, buf[:min(int64(len(buf)), size-off)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: ended at byte %d of %d", ErrTruncated, off, size)
		}
		for w := 0; w < n; {
			m, err := unix.Pwrite(dst, buf[w:n], off+int64(w))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			w += m
		}
		off += int64(n)
	}
	return nil
}

// ownerPID reads the writer pid from the header of a locked segment, for
// the error message; 0 if the header is unreadable. A writer that has
// just taken the lock records its pid only once it has validated the
// segment, so until then the header still names the previous owner, who
// may be dead: wait a little for a live one.
func ownerPID(fd int) int {
	pid := 0
	for range 50 {
		if pid, _ = headerPID(fd); ProcessAlive(pid) {
			return pid
		}
		time.Sleep(2 * time.Millisecond)
	}
	return pid
}

// Inspection is what a look at a segment's header tells, without taking
// its lock or mapping it: what rtm ls prints.
type Inspection struct {
	Path          string `json:"path"`
	Bytes         int64  `json:"bytes"`
	MACs          int    `json:"macs"`
	Routes        int    `json:"routes"`
	MACCapacity   int    `json:"mac_capacity"`
	RouteCapacity int    `json:"route_capacity"`
	Generation    uint64 `json:"generation"`
	// GenerationHex is Generation as rtm prints it: a JSON number past
	// 2^53 is rounded by jq and JavaScript.
	GenerationHex string    `json:"generation_hex"`
	WriterPID     int       `json:"writer_pid"`       // the last writer's pid
	Live          bool      `json:"live"`             // its writer is running (it has not closed it, and its pid is alive, of the store's owner)
	Clean         bool      `json:"clean"`            // the last writer closed it (else it died: the next one repairs)
	Changed       time.Time `json:"changed,omitzero"` // when its tables last changed; zero if unknown
}

// HexGeneration is a generation as rtm prints it: 16 hex digits.
func HexGeneration(g uint64) string { return fmt.Sprintf("%016x", g) }

// Inspect reads the header of the segment at path.
func Inspect(path string) (Inspection, error) {
	fd, err := openFD(path, unix.O_RDONLY, 0)
	if err != nil {
		return Inspection{}, fmt.Errorf("inspect store %s: %w", path, err)
	}
	defer closeFD(fd)
	st, err := statFD(fd)
	if err != nil {
		return Inspection{}, fmt.Errorf("inspect store %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		// A FIFO or a device: its read would say "illegal seek", or wait.
		return Inspection{}, fmt.Errorf("inspect store %s: %w: not a regular file", path, ErrNotStore)
	}
	size := st.Size
	buf := make([]byte, headerSize)
	n, err := readAt(fd, buf)
	if err != nil {
		return Inspection{}, fmt.Errorf("inspect store %s: %w", path, err)
	}
	h := headerAt(buf)
	l, err := h.validate(n, size)
	if err != nil {
		return Inspection{}, fmt.Errorf("inspect store %s: %w", path, err)
	}
	in := Inspection{
		Path: path, Bytes: size, MACCapacity: l.macCap, RouteCapacity: l.routeCap,
		MACs: int(h.macCount.Load()), Routes: int(h.routeCount.Load()),
		Generation: h.generation.Load(), WriterPID: int(h.pid.Load()), Clean: h.clean.Load() == 1,
	}
	in.GenerationHex = HexGeneration(in.Generation)
	// Not by trying the lock: even a shared lock taken for a moment could
	// make a server starting at that moment think the store taken. Its
	// writer runs as its owner: a pid another uid has since is not it.
	in.Live = !in.Clean && processOf(in.WriterPID, st.Uid)
	in.Changed = h.changedAt()
	return in, nil
}

// headerPID reads the pid of the segment's last writer from its header,
// and whether that writer closed it; 0 if the header is unreadable.
func headerPID(fd int) (pid int, clean bool) {
	buf := make([]byte, headerSize)
	n, err := readAt(fd, buf)
	if err != nil || n < headerSize {
		return 0, false
	}
	h := headerAt(buf)
	if h.magic.Load() != magic {
		return 0, false
	}
	return int(h.pid.Load()), h.clean.Load() == 1
}

// readLayout validates the header of the file open on fd before anything
// is mapped.
func readLayout(fd int) (layout, error) {
	size, err := fileSize(fd)
	if err != nil {
		return layout{}, err
	}
	buf := make([]byte, headerSize)
	n, err := readAt(fd, buf)
	if err != nil {
		return layout{}, err
	}
	return headerAt(buf).validate(n, size)
}

// attachExisting maps a locked, existing segment, repairs it if its last
// writer died, and loads the route index.
func attachExisting(path string, fd int) (*Store, error) {
	l, err := readLayout(fd)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{path: path, fd: fd, lock: -1, lay: l}
	if s.mem, err = mapFD(fd, l.total, true); err != nil {
		return nil, fmt.Errorf("open store %s: mmap %d bytes: %w", path, l.total, err)
	}
	s.attach()
	if s.hdr.version.Load() != layoutVersion {
		// Version 1 is version 2 without connected routes: the writer
		// marks it, so that an older rtm refuses it by version instead
		// of by the first connected route it cannot read.
		s.hdr.version.Store(layoutVersion)
		s.hdr.checksum.Store(staticSum(s.hdr))
	}
	s.gen = s.hdr.generation.Load()
	s.rec.PrevPID = int(s.hdr.pid.Load())
	s.rec.WasDirty = s.hdr.clean.Load() == 0
	// This process is the writer from here, the repair on: rtm ls and a
	// client's hint see a server starting, not one dead.
	s.hdr.pid.Store(uint64(getpid()))
	if s.rec.WasDirty {
		s.repair()
	}
	s.hdr.clean.Store(0)
	err = s.load()
	if err == nil {
		err = s.fixOlderRoutes()
	}
	if err == nil {
		err = s.Check()
	}
	if err != nil {
		if !s.rec.WasDirty {
			// Refused, not crashed: leave it as its last writer closed it,
			// so that rtm ls does not call it crashed (clean first: a
			// dead pid on a store not clean reads as a crash).
			s.hdr.clean.Store(1)
			s.hdr.pid.Store(uint64(s.rec.PrevPID))
		}
		unmap(s.mem)
		return nil, fmt.Errorf("open store %s: %w (remove the file to start empty)", path, err)
	}
	return s, nil
}

// fixOlderRoutes brings the routes an earlier rtm accepted that Check now
// refuses into line where it can: through 0.0.0.0 or :: is a connected
// route to Linux, and becomes one here; the others (through a gateway no
// kernel forwards by, or a device named with ',' or byte 0xa0) are named in the
// Recovery.
func (s *Store) fixOlderRoutes() error {
	var connect []entry.Route
	for r := range s.routes.All() {
		switch {
		case r.Connected() || entry.CheckGateway(r.Gateway) == nil:
		case r.Gateway.IsUnspecified():
			connect = append(connect, entry.Route{Prefix: r.Prefix, Dev: r.Dev})
		default:
			s.rec.BadGateways = append(s.rec.BadGateways, r)
		}
		if entry.CheckIfName(r.Dev) != nil {
			s.rec.BadDevices = append(s.rec.BadDevices, r)
		}
	}
	for _, r := range connect {
		if err := s.UpdateRoute(r); err != nil {
			return err
		}
	}
	s.rec.Connected = len(connect)
	return nil
}

// attach sets up the overlays on a fresh mapping.
func (s *Store) attach() {
	s.hdr = headerAt(s.mem)
	s.macs = macSlotsAt(s.mem, s.lay.macOff, s.lay.macSlots)
	s.rslots = routeSlotsAt(s.mem, s.lay.routeOff, s.lay.routeCap)
	s.routes.Reserve(s.lay.routeCap)
}

// load rebuilds the in-memory state (counts, route index, free list)
// from the slots.
func (s *Store) load() error {
	s.macCount = 0
	for i := range s.macs {
		if s.macs[i].key.Load() != 0 {
			s.macCount++
		}
	}
	s.hdr.macCount.Store(uint64(s.macCount))
	s.routes.Clear()
	for i := range s.rslots {
		var w [7]uint64
		for k := range w {
			w[k] = s.rslots[i].w[k].Load()
		}
		if w[0]&routeUsed == 0 {
			continue
		}
		r, err := decodeRoute(w)
		if err != nil {
			return fmt.Errorf("%w: route slot %d: %w", ErrCorrupt, i, err)
		}
		if _, slot, dup := s.routes.get(r.Prefix); dup {
			return fmt.Errorf("%w: route %s in slots %d and %d", ErrCorrupt, r.Prefix, slot, i)
		}
		s.routes.set(&r, int32(i))
	}
	s.hdr.routeCount.Store(uint64(s.routes.Len()))
	s.rebuildFreeRoutes()
	return nil
}

func (s *Store) rebuildFreeRoutes() {
	s.freeRoutes = s.freeRoutes[:0]
	for i := len(s.rslots) - 1; i >= 0; i-- {
		if s.rslots[i].w[0].Load()&routeUsed == 0 {
			s.freeRoutes = append(s.freeRoutes, int32(i))
		}
	}
	s.untouched = int32(len(s.rslots))
}

// untouchedRoutes says that every route slot is zero (a new store, a
// flush): each is free, in index order from untouched.
func (s *Store) untouchedRoutes() {
	s.freeRoutes = s.freeRoutes[:0]
	s.untouched = 0
}

// warmRoutes reads the route slots the first routes of a new store take,
// up to warmRouteSlots: their pages are faulted in and the slots cached
// now, not one page at a time in the first burst of routes (B9 ran 5-10%
// slower without, BENCHMARKS.md), while a start no longer reads all of a
// large table.
func (s *Store) warmRoutes() {
	for i := range min(len(s.rslots), warmRouteSlots) {
		s.rslots[i].w[0].Load()
	}
}

// warmRouteSlots is 1 MiB of route slots.
const warmRouteSlots = 16384

// freeRoute is the route slot the next create takes; false if none is
// free.
func (s *Store) freeRoute() (int32, bool) {
	if n := len(s.freeRoutes); n > 0 {
		return s.freeRoutes[n-1], true
	}
	return s.untouched, int(s.untouched) < len(s.rslots)
}

// takeRoute marks slot i, which freeRoute gave, used.
func (s *Store) takeRoute(i int32) {
	if n := len(s.freeRoutes); n > 0 {
		s.freeRoutes = s.freeRoutes[:n-1]
	} else {
		s.untouched++
	}
}

// freeRouteCount is the number of free route slots.
func (s *Store) freeRouteCount() int { return len(s.freeRoutes) + len(s.rslots) - int(s.untouched) }

// Close writes the segment back (msync), marks it clean, releases the
// write lock and unmaps it. The file stays for the next server.
func (s *Store) Close() error {
	if s.mem == nil {
		return nil
	}
	err := syncMem(s.mem)
	if err == nil {
		// Clean only once everything before it is on its way to the file.
		s.hdr.clean.Store(1)
		err = syncMem(s.mem[:headerSize])
	}
	if uerr := unmap(s.mem); err == nil {
		err = uerr
	}
	s.mem, s.hdr, s.macs, s.rslots = nil, nil, nil, nil
	if cerr := closeFD(s.fd); err == nil {
		err = cerr
	}
	if s.lock >= 0 {
		releaseWriterLock(s.path, s.lock)
		s.lock = -1
	}
	if err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Remove deletes the segment file, closing the store first if it is
// open. The file is unlinked while the lock is still held, so no other
// server can open it in between.
func (s *Store) Remove() error {
	var err error
	if s.mem != nil {
		err = unlink(s.path)
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	} else {
		err = unlink(s.path)
	}
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("remove store %s: %w", s.path, err)
	}
	return nil
}

// FitsAnew reports, before this store is removed to make it anew with
// other capacities, whether the new segment fits in the free space of
// its file system, this one's counted as freed: a tmpfs too small fails
// the check, not the creation after the old tables are gone.
func (s *Store) FitsAnew(capacity, routeCapacity int) error {
	need := newLayout(capacity, routeCapacity).total
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(s.path), &fs); err != nil {
		return nil // no figure to check against: the creation will say
	}
	free := int64(fs.Bavail)*fs.Bsize + int64(s.lay.total)
	if int64(need) > free {
		return fmt.Errorf("store %s: made anew for %d MACs and %d routes it takes %d bytes, and %s has %d free, this store's %d included; nothing was changed",
			s.path, capacity, routeCapacity, need, filepath.Dir(s.path), free, s.lay.total)
	}
	return nil
}

// Path is the segment file's path.
func (s *Store) Path() string { return s.path }

// Generation is the random non-zero value chosen when the segment was
// created; it survives reopening (but for a reissue, Recovery.Reissued)
// and tells clients whether their mapping is still the segment the
// server writes.
func (s *Store) Generation() uint64 { return s.gen }

// Recovery says what Open found and repaired.
func (s *Store) Recovery() Recovery { return s.rec }

// Capacity is the number of MAC entries the segment holds at most.
func (s *Store) Capacity() int { return s.lay.macCap }

// RouteCapacity is the number of routes the segment holds at most.
func (s *Store) RouteCapacity() int { return s.lay.routeCap }

// Size is the segment's size in bytes.
func (s *Store) Size() int { return s.lay.total }

// MarkChanged records t as the time the tables last changed, for rtm ls.
// The server marks it now and then, not on every change.
func (s *Store) MarkChanged(t time.Time) {
	if s.mem != nil {
		s.hdr.changed.Store(uint64(t.UnixNano()))
	}
}

// Changed is the time MarkChanged last recorded; zero if never.
func (s *Store) Changed() time.Time {
	if s.mem == nil {
		return time.Time{}
	}
	return s.hdr.changedAt()
}

// changedAt is the time the header's changed mark says; zero if none.
func (h *header) changedAt() time.Time {
	if ns := h.changed.Load(); ns != 0 {
		return time.Unix(0, int64(ns))
	}
	return time.Time{}
}

// Sync writes the segment back to its file (a checkpoint for segments on
// disk; cheap under /dev/shm).
func (s *Store) Sync() error {
	if s.mem == nil {
		return fmt.Errorf("sync store %s: %w", s.path, ErrClosed)
	}
	if err := syncMem(s.mem); err != nil {
		return fmt.Errorf("sync store %s: %w", s.path, err)
	}
	return nil
}
