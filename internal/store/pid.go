package store

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// DecimalPID reports whether pid is a process id as the kernel spells it:
// a positive decimal number without sign or leading zero that fits an int
// ("7", "4100"; not "0", "0042", "-5", "1e3" or "web1-12"). Only such pids
// are checked for liveness (ProcessAlive) and ordered as numbers
// (ComparePIDs); every other pid is an opaque name a program chose.
func DecimalPID(pid string) bool {
	if pid == "" || len(pid) > 19 || pid[0] < '1' || pid[0] > '9' {
		return false
	}
	for i := 1; i < len(pid); i++ {
		if pid[i] < '0' || pid[i] > '9' {
			return false
		}
	}
	if len(pid) == 19 && strconv.IntSize == 64 {
		return pid <= "9223372036854775807"
	}
	if strconv.IntSize == 32 {
		_, err := strconv.Atoi(pid)
		return err == nil
	}
	return true
}

// ComparePIDs is promstore's one order of process ids, used wherever pids
// are listed (dump's pid labels, top, ls --sort pid, a Redis store's shard
// order): decimal pids (DecimalPID) first, by number, then every other pid
// by its text, byte by byte (the order of Python's sorted() on str, since
// UTF-8 keeps code point order). It returns -1, 0 or +1.
//
// So 7, 0042, 100, -5, 1e3, web1-12 are listed 7, 100, -5, 0042, 1e3,
// web1-12: only what the kernel could have given is a number.
func ComparePIDs(a, b string) int {
	da, db := DecimalPID(a), DecimalPID(b)
	switch {
	case da && db:
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
	case da:
		return -1
	case db:
		return 1
	}
	return strings.Compare(a, b)
}

// AppendPIDKey appends to b a byte string whose order (bytes.Compare) is
// ComparePIDs' order, for sort keys made of several parts; a pid holding
// a NUL byte may compare equal to another one.
func AppendPIDKey(b []byte, pid string) []byte {
	if DecimalPID(pid) {
		n, _ := strconv.ParseUint(pid, 10, 64)
		b = append(b, 1)
		return binary.BigEndian.AppendUint64(b, n)
	}
	b = append(b, 2)
	b = append(b, pid...)
	return append(b, 0)
}
