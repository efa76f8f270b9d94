package store

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// prometheus_client keeps the file of each shard it writes mapped (shared,
// readable and writable) while the process runs, so a process's
// /proc/<pid>/maps (Linux) tells whether it is the writer of a shard
// file: a pid that merely runs (a pid of another host's shard, reused
// here by an unrelated process) does not map it.

// MapsFile reports whether process pid maps the file at path, read from
// /proc/<pid>/maps, in any way: a caller that must not touch a writer's
// file takes any mapping for a writer's. An error means it cannot be
// told: no /proc (not Linux), the process's maps not this user's to read
// (permission denied), or the process gone.
func MapsFile(pid, path string) (bool, error) {
	if !DecimalPID(pid) {
		return false, fmt.Errorf("pid %q: not a process id", pid)
	}
	p := realPath(path)
	found, err := mappedPaths(pid, false, func(s string) bool { return s == p })
	return len(found) > 0, err
}

// MappedBy returns, for each of paths that processes other than this one
// map writable (as their writers do), the pids of those processes in
// ascending order, keyed by the path as given. Read-only mappings are
// left out: they are readers' (promstore serve and top keep the shards
// they read mapped so, see filestore), which write nothing. Processes
// whose maps cannot be read are left out; without /proc it returns
// nothing.
func MappedBy(paths []string) map[string][]string {
	want := make(map[string]string, len(paths))
	for _, p := range paths {
		want[realPath(p)] = p
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil // no /proc: nothing to tell
	}
	var pids []int
	self := os.Getpid()
	for _, p := range procs {
		if n, err := strconv.Atoi(p.Name()); err == nil && n != self {
			pids = append(pids, n)
		}
	}
	slices.Sort(pids)
	out := map[string][]string{}
	for _, n := range pids {
		pid := strconv.Itoa(n)
		found, err := mappedPaths(pid, true, func(s string) bool { _, ok := want[s]; return ok })
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, f := range found {
			out[want[f]] = append(out[want[f]], pid)
		}
	}
	return out
}

// mappedPaths returns the distinct paths of the files process pid maps
// (only writable, when writable is set) for which want is true. A line
// of maps is "address perms offset dev inode path", perms such as "rw-s"
// for a writer's mapping and "r--s" for a reader's.
func mappedPaths(pid string, writable bool, want func(string) bool) ([]string, error) {
	f, err := os.Open(filepath.Join("/proc", pid, "maps"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var found []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 || writable && !writableMapping(line) {
			continue
		}
		path := strings.TrimSuffix(line[i:], " (deleted)")
		if !seen[path] && want(path) {
			seen[path] = true
			found = append(found, path)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return found, nil
}

// writableMapping reports whether a line of /proc/<pid>/maps is of a
// writable mapping: the second field, the permissions, has 'w' second.
func writableMapping(line string) bool {
	_, rest, ok := strings.Cut(line, " ")
	return ok && len(rest) >= 2 && rest[1] == 'w'
}

// realPath is path as /proc/<pid>/maps shows it: absolute, symbolic
// links resolved.
func realPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	// A file that is gone: resolve its directory.
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}
