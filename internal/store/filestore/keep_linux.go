//go:build linux

package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// keepSupported says whether KeepReads keeps shards here: it needs the
// inode numbers of the directory listing.
const keepSupported = true

// maxKeptMaps bounds the kept mappings to half of the kernel's limit of
// mappings per process (vm.max_map_count, 65,530 by default), leaving the
// rest to the Go runtime and everything else.
func maxKeptMaps() int {
	n := 65530
	if b, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			n = v
		}
	}
	return n / 2
}

// listInodes is list with each file's inode number, which the directory
// entries give (getdents64's d_ino) at no cost beyond the listing. The
// names of the last listing (names, nil for none) are parsed once: a
// listing of 26,000 shards costs the system calls and a map lookup each.
// The files are listed into last, the last read's listing (see
// takeFiles): a file listed at the same place under the same name, as
// most are, costs no lookup (its same is set). When the directory's
// stamp equals the last listing's and that one was stable (see
// dirStamp), the directory has not changed since: last is the listing,
// and the directory's entries are not read.
func (s *Store) listInodes(r *reuseState) ([]shardFile, dirStamp, error) {
	names := r.names
	last, lastStamp := r.takeFiles()
	files := last[:0]
	if files == nil {
		files = make([]shardFile, 0, len(names))
	}
	var stamp dirStamp
	err := s.eachDirent(func(name []byte, typ uint8, ino uint64) {
		i := len(files)
		if i < len(last) && last[i].name == string(name) {
			// Where it was: files[i] is last[i].
			f := &last[i]
			f.same = f.ino == ino
			f.regular, f.ino, f.keep, f.dead, f.idx, f.k = typ == syscall.DT_REG, ino, false, false, i, nil
			files = files[:i+1]
			return
		}
		if f, ok := names[string(name)]; ok {
			f.regular, f.ino, f.keep, f.dead, f.idx, f.same, f.k = typ == syscall.DT_REG, ino, false, false, i, false, nil
			files = append(files, f)
			return
		}
		if f, ok := s.listed(name, typ); ok {
			f.ino, f.idx = ino, i
			if len(files) == cap(files) {
				files = slices.Grow(files, max(len(files), 256))
			}
			files = append(files, f)
		}
	}, func(fd int, st *syscall.Stat_t, now time.Time) bool {
		stamp = stampOf(st, now.Round(0), now.Sub(monoStart), r.margin)
		stamp.stable = stamp.stable && localFS(fd)
		if last == nil || !lastStamp.unchanged(stamp) {
			return true
		}
		stamp.reused = true
		// Unchanged since the last listing: every file where it was.
		files = last
		for i := range files {
			f := &files[i]
			f.same, f.keep, f.dead, f.idx, f.k = true, false, false, i, nil
		}
		return false
	})
	return files, stamp, err
}

// StampMargin is how much older than a listing the directory's last
// change must be for the listing's stamp to be stable (see dirStamp; a
// read with kept shards then skips listing the directory while it stays
// unchanged): more than the granularity of any file system's timestamps
// (a clock tick, 1 s on ext4 with 128-byte inodes, 2 s on FAT).
const StampMargin = 3 * time.Second

// dirStamp is what fstat said of the directory before it was listed. A
// directory entry is only added, removed or renamed with the directory's
// mtime and ctime set to the time of the change, at the granularity of
// the file system's timestamps. When both lay more than a margin (see
// StampMargin) before the listing began (stable), any later change sets
// them to a later time; so while the directory's stamp stays the same, so
// does its listing. That holds where the directory's times come from this
// machine's clock, fresh: on a local file system (see localFS), not on
// NFS or FUSE, whose times a server stamps by its own clock and whose
// attributes may be cached. A wall clock set back between two reads
// (found by comparing its progress with the monotonic clock's) makes the
// stamp untrusted: a change could then be stamped with the old time; so
// do times clamped at the largest 32-bit second (ext4 with 128-byte
// inodes, XFS without bigtime: every change after 2038 gets that time).
// Not seen: a clock set back and forward again between two reads, and on
// overlayfs a change made in a lower layer while it is mounted (fstat
// shows the upper directory; the kernel leaves such changes undefined);
// changes made through the overlay are seen.
type dirStamp struct {
	dev, ino, nlink uint64
	size            int64
	mtime, ctime    syscall.Timespec
	// wall and mono are the wall clock and the monotonic clock (since
	// monoStart) when the directory was stat'ed; stable is set as above;
	// reused when the listing before was taken for this one.
	wall           time.Time
	mono           time.Duration
	stable, reused bool
}

// monoStart is the origin of dirStamp's monotonic readings.
var monoStart = time.Now()

func stampOf(st *syscall.Stat_t, wall time.Time, mono, margin time.Duration) dirStamp {
	d := dirStamp{dev: wide(st.Dev), ino: wide(st.Ino), nlink: wide(st.Nlink), size: st.Size, mtime: st.Mtim, ctime: st.Ctim, wall: wall, mono: mono}
	old := wall.Add(-margin)
	d.stable = time.Unix(st.Mtim.Unix()).Before(old) && time.Unix(st.Ctim.Unix()).Before(old) &&
		wideSec(st.Mtim.Sec) != math.MaxInt32 && wideSec(st.Ctim.Sec) != math.MaxInt32
	return d
}

// wide is v as a uint64: Stat_t's fields are 32 bits wide on some
// architectures.
func wide[T ~uint32 | ~uint64](v T) uint64 { return uint64(v) }

// wideSec is v, a Timespec's seconds, as an int64.
func wideSec[T ~int32 | ~int64](v T) int64 { return int64(v) }

// unchanged says whether cur, the directory's stamp now, shows that it
// has not changed since d, a stable stamp, was taken: every field the
// same, and the wall clock gone forward as far as the monotonic clock,
// within 10 ms (Linux slews CLOCK_MONOTONIC as it slews CLOCK_REALTIME:
// only a step sets them apart, however long the time between reads).
func (d dirStamp) unchanged(cur dirStamp) bool {
	elapsed := cur.mono - d.mono
	setBack := cur.wall.Sub(d.wall) < elapsed-10*time.Millisecond
	return d.stable && !setBack && d.dev == cur.dev && d.ino == cur.ino && d.nlink == cur.nlink &&
		d.size == cur.size && d.mtime == cur.mtime && d.ctime == cur.ctime
}

// localFS says whether the directory open as fd is on a file system whose
// times this machine's clock stamps and whose attributes fstat reads
// fresh: tmpfs, ramfs, ext2/3/4, XFS, Btrfs, F2FS, overlayfs, ZFS.
func localFS(fd int) bool {
	var fs syscall.Statfs_t
	if syscall.Fstatfs(fd, &fs) != nil {
		return false
	}
	switch uint32(fs.Type) {
	case 0x01021994, // tmpfs
		0x858458f6, // ramfs
		0xef53,     // ext2, ext3, ext4
		0x58465342, // XFS
		0x9123683e, // Btrfs
		0xf2f52010, // F2FS
		0x794c7630, // overlayfs
		0x2fc12fc1: // ZFS
		return true
	}
	return false
}

// guessEntries is the number of entries a directory of size bytes (its
// st_size) likely holds: about 42 bytes each on ext4, 20 on tmpfs; a
// listing that meets more doubles its room (append would grow a large
// slice by a quarter at a time, copying a listing of 26,000 shards ten
// times more).
func guessEntries(size int64) int {
	return int(min(max(size/32, 64), 1<<20))
}

// list returns the directory's shard files in directory order, the order
// Python's glob("*.db") (os.scandir) hands them to its collector. Python
// merges in that order, and it matters: float sums depend on it, and so
// does which value "is seen first" for min/max with NaN. Reading in the
// same order makes promstore's values equal Python's to the bit; the order
// is stable for as long as the directory is not changed. Like glob it
// ignores names starting with a dot (so the temporary files WriteShard
// creates are never read). The entries are read with getdents64, into
// one string per file.
func (s *Store) list() ([]shardFile, error) {
	var files []shardFile
	err := s.eachDirent(func(name []byte, typ uint8, _ uint64) {
		if f, ok := s.listed(name, typ); ok {
			if len(files) == cap(files) {
				files = slices.Grow(files, max(len(files), 256))
			}
			files = append(files, f)
		}
	}, func(_ int, st *syscall.Stat_t, _ time.Time) bool {
		files = make([]shardFile, 0, guessEntries(st.Size))
		return true
	})
	return files, err
}

// listed returns the shardFile of a directory entry of name and type
// (d_type) when it is one to read; its path is the one string made for
// it, its name a part of that.
func (s *Store) listed(name []byte, typ uint8) (shardFile, bool) {
	path := s.dir + string(os.PathSeparator) + string(name)
	f := shardFile{name: path[len(path)-len(name):], path: path, regular: typ == syscall.DT_REG}
	var ok bool
	f.id, ok, f.nameErr = ShardFile(f.name)
	return f, ok && f.name != BarrierName
}

// eachDirent calls fn with every entry of the directory in directory
// order: its name (valid during the call), type and inode number. statted
// is first called with the directory's descriptor, what fstat says of it
// and the time just before that fstat; the entries are not read when it
// returns false.
func (s *Store) eachDirent(fn func(name []byte, typ uint8, ino uint64), statted func(fd int, st *syscall.Stat_t, now time.Time) bool) error {
	fd, err := syscall.Open(s.dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("list %s: %w", s.dir, &os.PathError{Op: "open", Path: s.dir, Err: err})
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	now := time.Now()
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("list %s: %w", s.dir, &os.PathError{Op: "fstat", Path: s.dir, Err: err})
	}
	if !statted(fd, &st, now) {
		return nil
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", s.dir, &os.PathError{Op: "readdirent", Path: s.dir, Err: err})
		}
		if n <= 0 {
			return nil
		}
		// struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16,
		// d_type u8, d_name (NUL-terminated).
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			ino := binary.NativeEndian.Uint64(b)
			typ := b[18]
			name := b[19:reclen]
			if i := indexNUL(name); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if string(name) != "." && string(name) != ".." {
				fn(name, typ, ino)
			}
		}
	}
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// mapKept maps the regular file at path read-only, whole, opening it as
// openRaw does (not following a link, never waiting on a FIFO). It
// returns the mapping, the file's size and inode number.
func mapKept(path string) (data []byte, size int64, ino uint64, err error) {
	f, err := openRaw(path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return nil, 0, 0, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size < headerSize || st.Size > maxKeptSize {
		return nil, 0, 0, errors.New("not kept")
	}
	data, err = syscall.Mmap(f.fd, 0, int(st.Size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, 0, 0, err
	}
	return data, st.Size, st.Ino, nil
}
