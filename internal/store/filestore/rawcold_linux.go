package filestore

import (
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// coldReads is what a parser knows of the page cache while it reads
// shards the usual way (openat, pread, close; io_uring off or refused),
// as a ring knows it from its first pages (see ring.cold). A read that
// misses the page cache reads a readahead window: for a shard of 64 KiB
// whose entries fill a page, mostly the zeros of its unused room, read
// or zero-filled into the page cache. Every coldCheckEvery shards, the
// process's block input count (getrusage, ru_inblock) tells whether
// reads went to the disk meanwhile; once they did, every later shard is
// advised POSIX_FADV_RANDOM before it is read (one more system call),
// so that it reads the pages asked for. A read from the page cache only
// (RWF_NOWAIT) does not tell: without io_uring's plug around a batch, the
// readahead it starts has often completed when it looks again.
type coldReads struct {
	cold    bool
	started bool
	inblock int64 // ru_inblock at the last check
	since   int   // shards opened since the last check
}

// coldCheckEvery is how many shards a parser reads the usual way between
// two looks at the process's block input count.
const coldCheckEvery = 32

// advisedRaw counts the shards read the usual way that were advised
// POSIX_FADV_RANDOM (for tests).
var advisedRaw atomic.Int64

// open opens path as openRaw does, advised POSIX_FADV_RANDOM once reads
// went to the disk.
func (c *coldReads) open(path string) (rawFile, error) {
	if !c.cold && (!c.started || c.since >= coldCheckEvery) {
		c.check()
	}
	f, err := openRaw(path)
	if err != nil {
		return f, err
	}
	c.since++
	if c.cold {
		_ = unix.Fadvise(f.fd, 0, 0, unix.FADV_RANDOM) // advice: its failure changes nothing read
		advisedRaw.Add(1)
	}
	return f, nil
}

// check looks at the process's block input count: the first time to
// start from it, then to see whether it grew.
func (c *coldReads) check() {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return
	}
	if c.started && ru.Inblock > c.inblock {
		c.cold = true
	}
	c.started, c.inblock, c.since = true, ru.Inblock, 0
}
