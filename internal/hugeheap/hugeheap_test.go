package hugeheap

import "testing"

func TestPlan(t *testing.T) {
	const madvise = "always [madvise] never\n"
	meminfo := func(kb string) []byte {
		return []byte("MemTotal:       24000000 kB\nMemFree:        20000000 kB\nMemAvailable:   " + kb + " kB\nBuffers: 1 kB\n")
	}
	tests := []struct {
		name                 string
		thp, overcommit, mem string
		want                 int
	}{
		{"madvise, plenty of memory", madvise, "0\n", string(meminfo("23000000")), maxReserve},
		{"madvise, 1 GiB available: a quarter", madvise, "1\n", string(meminfo("1048576")), 256 << 20},
		{"madvise, 200 MiB available: too little", madvise, "0\n", string(meminfo("204800")), 0},
		{"always: the kernel does it", "[always] madvise never\n", "0\n", string(meminfo("23000000")), 0},
		{"never", "always madvise [never]\n", "0\n", string(meminfo("23000000")), 0},
		{"strict overcommit", madvise, "2\n", string(meminfo("23000000")), 0},
		{"no THP file (not Linux, or no THP)", "", "0\n", string(meminfo("23000000")), 0},
		{"no MemAvailable", madvise, "0\n", "MemTotal: 24000000 kB\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plan([]byte(tt.thp), []byte(tt.overcommit), []byte(tt.mem)); got != tt.want {
				t.Errorf("plan = %d, want %d", got, tt.want)
			}
		})
	}
}
