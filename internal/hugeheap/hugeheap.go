// Package hugeheap asks the kernel to back the Go heap with transparent
// huge pages, for a process that builds a large heap quickly and then
// exits (promstore dump of a store of many series). See Prepare.
package hugeheap

import (
	"bufio"
	"bytes"
	"strconv"
	"sync"
)

// Bounds of the address range Prepare marks.
const (
	maxReserve = 512 << 20
	minReserve = 64 << 20
)

var once sync.Once

// Prepare marks, once per process, a range of the Go heap that the
// runtime will hand out next as worth backing with huge pages, where
// Linux gives them only on request (transparent_hugepage "madvise", the
// default of most distributions): it allocates a large block (address
// space only: nothing touches it), advises MADV_HUGEPAGE on it and frees
// it, so that the heap the program then grows into faults in 2 MiB at a
// time instead of 4 KiB. A read of a large store grows a heap of hundreds
// of MiB within a second; on a virtual machine each page fault costs
// microseconds, and the key tables' random accesses miss the TLB less.
//
// It does nothing where it cannot help or could hurt: other systems,
// transparent huge pages "always" (the kernel does it already) or
// "never", strict overcommit (vm.overcommit_memory 2, where even an
// untouched block counts), or little available memory. The block is at
// most a quarter of the available memory and 512 MiB.
func Prepare() { once.Do(prepare) }

// plan returns how many bytes to mark, 0 for none, given the contents
// of /sys/kernel/mm/transparent_hugepage/enabled,
// /proc/sys/vm/overcommit_memory and /proc/meminfo.
func plan(thp, overcommit, meminfo []byte) int {
	if !bytes.Contains(thp, []byte("[madvise]")) || string(bytes.TrimSpace(overcommit)) == "2" {
		return 0
	}
	avail, ok := kBField(meminfo, "MemAvailable")
	if !ok {
		return 0
	}
	n := min(maxReserve, avail/4)
	if n < minReserve {
		return 0
	}
	return n
}

// kBField returns, in bytes, the field name of a /proc file made of
// "Name:   N kB" lines (/proc/meminfo, /proc/self/smaps_rollup).
func kBField(b []byte, name string) (int, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == name+":" && string(f[2]) == "kB" {
			if kb, err := strconv.Atoi(string(f[1])); err == nil {
				return kb << 10, true
			}
		}
	}
	return 0, false
}
