//go:build linux && (amd64 || arm64)

package filestore

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// A ring reads a batch of small shards with io_uring in three system
// calls (see prefetch), where each shard costs three or four otherwise
// (openat, pread, a second pread past its first page, close). On a pile of
// 26,000 dead workers' shards that was most of a dump's system time, and
// system calls are dear on virtual machines. A shard whose open or read
// fails, or whose used size is over maxAhead, is read the usual way.
//
// io_uring is a Linux interface (5.6 or later for the operations used
// here) that a seccomp profile (Docker's default), the
// kernel.io_uring_disabled sysctl or an older kernel may refuse: then
// newRing fails once, every later call fails at once, and shards are read
// as before. PROMSTORE_IO_URING=off switches it off.
type ring struct {
	fd      int
	sqTail  *uint32
	sqMask  uint32
	sqArray unsafe.Pointer
	sqes    []uringSQE
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    unsafe.Pointer
	mem     [][]byte // the mappings, unmapped by close

	// dirfd is the directory dir opened (O_PATH), -1 for none: files in
	// it are opened by name (atDir[i] for the batch's file i).
	dirfd int32
	dir   string
	atDir []bool
	// paths holds the batch's paths, NUL-terminated; bufs its pages.
	paths []byte
	offs  []int
	bufs  []byte
	fds   []int32
	got   []int32
	// more and rest hold the larger shards' used bytes; pages the
	// prefetched results.
	more  []span
	rest  []byte
	pages []prefetched
	// gone is set when the ring was abandoned.
	gone bool
	// wait bounds the wait for a read that may wait (see waitFirst).
	wait kernelTimespec
	// fadvise is set when the kernel has IORING_OP_FADVISE; cold once a
	// first page was not in the page cache (EAGAIN): from the next batch
	// on, each shard's reads are preceded by POSIX_FADV_RANDOM, so that
	// they read the pages asked for and no readahead window (see
	// prefetch).
	fadvise, cold bool
	// blocking is set once every read from the page cache only of a
	// batch was refused (EOPNOTSUPP: the file system, tmpfs for one,
	// cannot tell whether a read would wait; a FIFO or a directory
	// refuses them too): later reads of the ring may wait, each canceled
	// after wait.
	blocking bool
}

// kernelTimespec is struct __kernel_timespec.
type kernelTimespec struct{ sec, nsec int64 }

// firstPageWait is how long a first page's read may take before it is
// canceled: a read from the page cache or a disk takes milliseconds; one
// that waits for seconds is waiting for a writer (a FIFO put at a shard's
// name after the listing).
const firstPageWait = 5 * time.Second

// The io_uring ABI (include/uapi/linux/io_uring.h).
const (
	sysIOUringSetup    = 425
	sysIOUringEnter    = 426
	sysIOUringRegister = 427

	uringOpLinkTimeout = 15
	uringOpOpenat      = 18
	uringOpClose       = 19
	uringOpRead        = 22
	uringOpFadvise     = 24

	uringSQELink          = 1 << 2
	uringSQEHardlink      = 1 << 3
	rwfNowait             = 0x8 // RWF_NOWAIT: fail with EAGAIN rather than wait
	posixFadvRandom       = 1   // POSIX_FADV_RANDOM: no readahead
	uringEnterGetevents   = 1
	uringFeatSingleMmap   = 1
	uringRegisterProbe    = 8
	uringProbeOpSupported = 1

	uringOffSQRing = 0
	uringOffSQEs   = 0x10000000

	atFDCWD = -100
	oPath   = 0x200000 // O_PATH
)

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  uringSQOffsets
	cqOff                                                                  uringCQOffsets
}

// uringSQE is a submission queue entry (64 bytes).
type uringSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFDIn  int32
	pad         [2]uint64
}

// uringCQE is a completion queue entry (16 bytes).
type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// uringProbe is struct io_uring_probe with room for 256 operations.
type uringProbe struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
	ops    [256]struct {
		op    uint8
		resv  uint8
		flags uint16
		resv2 uint32
	}
}

// ringBatch is how many shards a ring reads at once: a pipeline unit's
// most (unitMax).
const ringBatch = unitMax

// ringOff is set when io_uring is not to be used: switched off by
// PROMSTORE_IO_URING=off, or refused once.
var ringOff atomic.Bool

func init() {
	if os.Getenv("PROMSTORE_IO_URING") == "off" {
		ringOff.Store(true)
	}
}

// ringFiles counts the shards whose first page a ring read, waited the
// first pages read again waiting, advised the reads advised
// POSIX_FADV_RANDOM before (for tests).
var ringFiles, waited, advised atomic.Int64

// newRing sets up a ring for batches of ringBatch shards; nil when
// io_uring is off or refused (which switches it off for the process).
func newRing() *ring {
	if ringOff.Load() {
		return nil
	}
	r, err := setupRing(2 * ringBatch)
	if err != nil {
		ringOff.Store(true)
		return nil
	}
	return r
}

func setupRing(entries uint32) (*ring, error) {
	var p uringParams
	fd, _, errno := syscall.Syscall(sysIOUringSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, errno
	}
	r := &ring{fd: int(fd), dirfd: -1, wait: kernelTimespec{sec: int64(firstPageWait / time.Second)}}
	if p.features&uringFeatSingleMmap == 0 || !r.supports(uringOpOpenat, uringOpRead, uringOpClose, uringOpLinkTimeout) {
		r.close()
		return nil, errors.New("io_uring lacks what the batch reader needs")
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(uringCQE{})))
	rings, err := syscall.Mmap(r.fd, uringOffSQRing, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, err
	}
	r.mem = append(r.mem, rings)
	sqes, err := syscall.Mmap(r.fd, uringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, err
	}
	r.mem = append(r.mem, sqes)
	b := unsafe.Pointer(&rings[0])
	r.sqTail = (*uint32)(unsafe.Add(b, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(b, p.sqOff.ringMask))
	r.sqArray = unsafe.Add(b, p.sqOff.array)
	r.cqHead = (*uint32)(unsafe.Add(b, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(b, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(b, p.cqOff.ringMask))
	r.cqes = unsafe.Add(b, p.cqOff.cqes)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&sqes[0])), p.sqEntries)
	r.fadvise = r.supports(uringOpFadvise)
	return r, nil
}

// supports reports whether the kernel knows every operation of ops.
func (r *ring) supports(ops ...uint8) bool {
	var probe uringProbe
	_, _, errno := syscall.Syscall6(sysIOUringRegister, uintptr(r.fd), uringRegisterProbe, uintptr(unsafe.Pointer(&probe)), uintptr(len(probe.ops)), 0, 0)
	if errno != 0 {
		return false
	}
	for _, op := range ops {
		if op > probe.lastOp || probe.ops[op].flags&uringProbeOpSupported == 0 {
			return false
		}
	}
	return true
}

// dirOf returns the directory part of f's path as it is written (with
// its separator; not cleaned, for a ".." after a symbolic link is the
// kernel's to resolve), and false when the path is not that and f's name.
func dirOf(f *shardFile) (string, bool) {
	p, n := f.path, f.name
	if n == "" || len(p) <= len(n) || p[len(p)-len(n):] != n || !os.IsPathSeparator(p[len(p)-len(n)-1]) {
		return "", false
	}
	return p[:len(p)-len(n)], true
}

// openDir opens dir for the ring's opens by name (closing the one open
// before) and reports whether it could.
func (r *ring) openDir(dir string) bool {
	if r.dirfd >= 0 {
		_ = syscall.Close(int(r.dirfd))
		r.dirfd = -1
	}
	fd, err := syscall.Open(dir, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	r.dirfd, r.dir = int32(fd), dir
	return true
}

// close releases the ring; a second call does nothing.
func (r *ring) close() {
	if r == nil || r.gone || r.fd < 0 {
		return
	}
	if r.dirfd >= 0 {
		_ = syscall.Close(int(r.dirfd))
		r.dirfd = -1
	}
	for _, m := range r.mem {
		_ = syscall.Munmap(m)
	}
	r.mem = nil
	_ = syscall.Close(r.fd)
	r.fd = -1
}

// push queues one operation. The submission queue must have room: a
// batch queues at most two operations per shard (2*ringBatch, the ring's
// size), and run waits for every completion of one before the next.
func (r *ring) push(e uringSQE) {
	tail := atomic.LoadUint32(r.sqTail)
	i := tail & r.sqMask
	r.sqes[i] = e
	*(*uint32)(unsafe.Add(r.sqArray, 4*uintptr(i))) = i
	atomic.StoreUint32(r.sqTail, tail+1)
}

// ringFault, set by tests, is called with what is submitted before a
// batch's operations are; an error it returns is taken for
// io_uring_enter's.
var ringFault func(what string) error

// run submits the n operations queued and calls fn with each of their n
// completions.
func (r *ring) run(what string, n int, fn func(userData uint64, res int32)) error {
	for submitted, done := 0, 0; done < n; {
		if submitted == 0 && ringFault != nil {
			if err := ringFault(what); err != nil {
				return err
			}
		}
		got, _, errno := syscall.Syscall6(sysIOUringEnter, uintptr(r.fd), uintptr(n-submitted), 1, uringEnterGetevents, 0, 0)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN || errno == syscall.EBUSY:
			// Completions to reap first; with none, the kernel is short
			// of something this ring cannot give back.
		case errno != 0:
			return errno
		default:
			submitted += int(got)
		}
		head, tail := atomic.LoadUint32(r.cqHead), atomic.LoadUint32(r.cqTail)
		if head == tail && errno != 0 {
			return errno
		}
		for ; head != tail; head++ {
			c := (*uringCQE)(unsafe.Add(r.cqes, uintptr(head&r.cqMask)*unsafe.Sizeof(uringCQE{})))
			fn(c.userData, c.res)
			done++
		}
		atomic.StoreUint32(r.cqHead, head)
	}
	return nil
}

// prefetch reads the used bytes of each of files with the ring, into
// buffers valid until the next call: pre[i] is files[i]'s, nil when the
// ring did not read it (not a regular file by the listing, an open or a
// read that failed: the file is then read the usual way, which tells what
// is wrong). It takes three system calls for the batch: the opens; the
// first pages' reads (firstRead bytes: all of a small shard's used
// bytes); then, for a shard whose used size its first page says is larger
// (up to maxAhead, maxRest for the batch), a read of its used bytes
// through the same descriptor, and every file's close (hard-linked to
// that read: it runs whatever the read did). The reads take only what the
// page cache holds (RWF_NOWAIT): a first page it does not hold is read
// again, waiting, in one more system call (waitFirst); the rest of a
// shard not in it is read the usual way. On a file system that refuses
// such reads (tmpfs), the ring turns blocking: its reads wait, each
// canceled after firstPageWait (a FIFO put at a shard's name after the
// listing, held open by a writer, would keep it waiting), and the rest's
// reads take one more system call before the closes. A failure of the
// ring itself switches it off and returns nil.
func (r *ring) prefetch(files []shardFile, pre []*prefetched) []*prefetched {
	pre = pre[:0]
	if !r.usable() || len(files) > ringBatch {
		return nil
	}
	if !slices.ContainsFunc(files, func(f shardFile) bool { return f.regular && !f.keep }) {
		return nil // every one read through its kept mapping
	}
	// Names are opened in the directory of the first file's path, opened
	// once for the ring: a path's lookup walks every one of its
	// directories again. Other files are opened by their path.
	dir, ok := dirOf(&files[0])
	inDir := ok && (r.dirfd >= 0 && r.dir == dir || r.openDir(dir))
	r.paths, r.offs, r.atDir = r.paths[:0], r.offs[:0], r.atDir[:0]
	for i := range files {
		r.offs = append(r.offs, len(r.paths))
		p := files[i].path
		d, ok := dirOf(&files[i])
		at := inDir && ok && d == r.dir
		if at {
			p = files[i].name
		}
		r.paths, r.atDir = append(append(r.paths, p...), 0), append(r.atDir, at)
	}
	if cap(r.bufs) < len(files)*firstRead {
		r.bufs = make([]byte, ringBatch*firstRead)
	}
	r.fds, r.got, r.more = r.fds[:0], r.got[:0], r.more[:0]
	for range files {
		r.fds, r.got, r.more = append(r.fds, -1), append(r.got, -1), append(r.more, span{})
	}
	// The opens.
	n := 0
	for i := range files {
		if !files[i].regular || files[i].keep {
			continue
		}
		dirfd := int32(atFDCWD)
		if r.atDir[i] {
			dirfd = r.dirfd
		}
		r.push(uringSQE{opcode: uringOpOpenat, fd: dirfd, addr: uint64(uintptr(unsafe.Pointer(&r.paths[r.offs[i]]))),
			opFlags: syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NONBLOCK | syscall.O_NOFOLLOW, userData: uint64(i)})
		n++
	}
	err := r.run("opens", n, func(i uint64, res int32) {
		if res >= 0 {
			r.fds[i] = res
		}
	})
	runtime.KeepAlive(r.paths)
	if err != nil {
		r.abandon(true)
		return nil
	}
	// The first pages, from the page cache only (RWF_NOWAIT): such a read
	// never waits, so it needs no timeout (a linked timeout costs about as
	// much as the read). A page not in the page cache (EAGAIN), or a file
	// system that reads nothing without waiting (EOPNOTSUPP: tmpfs),
	// leaves the file to waitFirst.
	//
	// A read that misses the page cache starts the readahead of a window
	// of pages (16 KiB or more) even from the page cache only: a store
	// whose pages were dropped (memory pressure, a host that pages out
	// what was not read for a while) would be read into the page cache
	// several times over, most of it the zeros of a shard's unused room.
	// Once a first page was missing (any EAGAIN, for the rest of the
	// ring's life), the ring advises POSIX_FADV_RANDOM for each shard
	// before its reads (hard-linked: the read runs whatever the advice
	// returned). It costs an operation per shard, so a ring that found
	// every first page in the page cache reads without it. An advice and
	// a read per shard take all of the ring's 2*ringBatch entries: the
	// advice is left out of a batch that would not fit (push does not
	// check for room).
	n = 0
	advise := r.cold && r.fadvise && !r.blocking && 2*len(r.fds) <= len(r.sqes)
	for i, fd := range r.fds {
		switch {
		case fd < 0:
		case r.blocking:
			r.got[i] = -int32(syscall.EAGAIN) // for waitFirst
		default:
			if advise {
				r.push(uringSQE{opcode: uringOpFadvise, flags: uringSQEHardlink, fd: fd, opFlags: posixFadvRandom, userData: adviceTag})
				n++
				advised.Add(1)
			}
			r.push(uringSQE{opcode: uringOpRead, fd: fd, addr: uint64(uintptr(unsafe.Pointer(&r.bufs[i*firstRead]))), len: firstRead, opFlags: rwfNowait, userData: uint64(i)})
			n++
		}
	}
	refused, other := 0, 0
	err = r.run("first pages", n, func(i uint64, res int32) {
		if i == adviceTag {
			return
		}
		r.got[i] = res
		switch res {
		case -int32(syscall.EOPNOTSUPP):
			refused++ // by the file system, or by a FIFO or directory
		case -int32(syscall.EAGAIN):
			r.cold = true
			other++
		default:
			other++
		}
	})
	r.blocking = r.blocking || refused > 0 && other == 0
	if err == nil {
		err = r.waitFirst()
	}
	runtime.KeepAlive(r.bufs)
	if err != nil {
		r.abandon(true)
		return nil
	}
	// The rest of the larger shards, and the closes.
	total := 0
	for i, got := range r.got {
		if got != firstRead {
			continue
		}
		used := int(int32(binary.LittleEndian.Uint32(r.bufs[i*firstRead:])))
		if used > firstRead && used <= maxAhead && total+used <= maxRest {
			r.more[i] = span{off: total, n: used}
			total += used
		}
	}
	if cap(r.rest) < total {
		// Doubled (a quarter more each time made five times the
		// bytes of the largest batch), up to the largest a batch takes.
		r.rest = make([]byte, min(max(2*total, 256<<10), maxRest))
	}
	if r.blocking && total > 0 {
		// Reads that may wait, each canceled after r.wait, before the
		// closes: a chain does not go on past a linked timeout.
		n = 0
		for i, fd := range r.fds {
			if m := r.more[i]; fd >= 0 && m.n > 0 {
				n += r.pushWaiting(fd, r.rest[m.off:m.off+m.n], uint64(i)|moreTag)
			}
		}
		err = r.run("rests waiting", n, r.restRead)
		runtime.KeepAlive(r.rest)
		if err != nil {
			r.abandon(true)
			return nil
		}
	}
	n = 0
	for i, fd := range r.fds {
		if fd < 0 {
			continue
		}
		if m := r.more[i]; m.n > 0 && !r.blocking {
			r.push(uringSQE{opcode: uringOpRead, flags: uringSQEHardlink, fd: fd, addr: uint64(uintptr(unsafe.Pointer(&r.rest[m.off]))), len: uint32(m.n), opFlags: rwfNowait, userData: uint64(i) | moreTag})
			n++
		}
		r.push(uringSQE{opcode: uringOpClose, fd: fd, userData: closeTag})
		n++
	}
	err = r.run("closes", n, r.restRead)
	runtime.KeepAlive(r.rest)
	if err != nil {
		r.abandon(false)
		return nil
	}
	// pre points into r.pages: made at its length first, so that it does
	// not move.
	r.pages = slices.Grow(r.pages[:0], len(r.got))[:len(r.got)]
	for i, got := range r.got {
		m := r.more[i]
		switch {
		case got < 0, m.n > 0 && m.got < 0:
			pre = append(pre, nil)
			continue
		case m.n > 0 && int(m.got) < m.n && !r.blocking:
			// Short: the page cache held only part of the rest (a read
			// that waits stops short only at the end of the file).
			pre = append(pre, nil)
			continue
		case m.n > 0:
			r.pages[i] = prefetched{data: r.rest[m.off : m.off+int(m.got)], eof: int(m.got) < m.n}
		default:
			r.pages[i] = prefetched{data: r.bufs[i*firstRead : i*firstRead+int(got)], eof: got < firstRead}
		}
		pre = append(pre, &r.pages[i])
		ringFiles.Add(1)
	}
	return pre
}

// pushWaiting queues a read of fd into b that may wait, linked to a
// timeout that cancels it after r.wait, and returns the operations queued
// (two: the timeout's completion is marked timeoutTag).
func (r *ring) pushWaiting(fd int32, b []byte, userData uint64) int {
	r.push(uringSQE{opcode: uringOpRead, flags: uringSQELink, fd: fd, addr: uint64(uintptr(unsafe.Pointer(&b[0]))), len: uint32(len(b)), userData: userData})
	r.push(uringSQE{opcode: uringOpLinkTimeout, addr: uint64(uintptr(unsafe.Pointer(&r.wait))), len: 1, userData: timeoutTag})
	return 2
}

// restRead takes the completion of a read of a larger shard's rest
// (moreTag); the closes' and timeouts' are not looked at.
func (r *ring) restRead(userData uint64, res int32) {
	if userData&moreTag != 0 {
		r.more[userData&^moreTag].got = res
	}
}

// waitFirst reads, waiting, the first pages the page-cache-only reads
// did not get (EAGAIN, EOPNOTSUPP; every first page of a blocking ring);
// each read is canceled after r.wait (a FIFO put at a shard's name after
// the listing, held open by a writer, would keep it waiting).
func (r *ring) waitFirst() error {
	n := 0
	for i, fd := range r.fds {
		if got := r.got[i]; fd >= 0 && (got == -int32(syscall.EAGAIN) || got == -int32(syscall.EOPNOTSUPP)) {
			n += r.pushWaiting(fd, r.bufs[i*firstRead:(i+1)*firstRead], uint64(i))
		}
	}
	if n == 0 {
		return nil
	}
	waited.Add(int64(n / 2))
	return r.run("first pages waiting", n, func(i uint64, res int32) {
		if i != timeoutTag {
			r.got[i] = res
		}
	})
}

// span is where a larger shard's used bytes go in ring.rest, and what
// their read returned.
type span struct {
	off, n int
	got    int32
}

// maxAhead bounds the used size of a shard a ring reads, maxRest the used
// bytes of a batch's larger shards: the others are read the usual way,
// through the window.
const (
	maxAhead = 1 << 20
	maxRest  = 4 << 20
)

// moreTag marks the completions of the reads of larger shards' used bytes.
const moreTag = 1 << 61

// closeTag and timeoutTag mark the completions of closes and of the first
// pages' timeouts, adviceTag those of the advice before a first page's
// read.
const (
	closeTag   = 1 << 62
	timeoutTag = 1 << 60
	adviceTag  = 1 << 59
)

// abandoned holds the rings given up: never closed nor freed, in case
// the kernel still holds their buffers.
var (
	abandonedMu sync.Mutex
	abandoned   []*ring
)

// abandon switches io_uring off after a failure of io_uring_enter
// itself: the ring's state is no longer known, so it is not used again.
// closeFDs closes the descriptors the batch's opens gave, when no close of
// the batch was submitted (one still in flight must not close a number
// that may already be another file's); an open still in flight is lost.
func (r *ring) abandon(closeFDs bool) {
	if closeFDs {
		for i, fd := range r.fds {
			if fd >= 0 {
				_ = syscall.Close(int(fd))
				r.fds[i] = -1
			}
		}
	}
	ringOff.Store(true)
	r.gone = true
	abandonedMu.Lock()
	abandoned = append(abandoned, r)
	abandonedMu.Unlock()
}

// usable reports whether r may read the next batch.
func (r *ring) usable() bool { return r != nil && r.fd >= 0 && !r.gone && !ringOff.Load() }
