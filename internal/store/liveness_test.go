package store

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
)

func TestProcessAlive(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("pid probing needs Unix signals")
	}
	// A child that has exited and been reaped no longer exists (until its
	// pid is reused, which the kernel avoids for a long while).
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatalf("run child: %v", err)
	}
	dead := strconv.Itoa(cmd.ProcessState.Pid())

	tests := []struct {
		pid  string
		want Liveness
	}{
		{strconv.Itoa(os.Getpid()), AliveYes},
		{"1", AliveYes}, // init exists; EPERM still means alive
		{dead, AliveNo},
		{"0", AliveUnknown},
		{"-5", AliveUnknown},
		{"worker-a", AliveUnknown},
		{"", AliveUnknown},
		{"0042", AliveUnknown}, // not how a pid is spelled: not ours to guess
		{"99999999999999999999", AliveUnknown},
	}
	for _, tt := range tests {
		if got := ProcessAlive(tt.pid); got != tt.want {
			t.Errorf("ProcessAlive(%q) = %q, want %q", tt.pid, got, tt.want)
		}
	}
}

// TestProcessAliveThread: on Linux a thread's ID answers kill(2) as its
// process does; a dead worker's pid the kernel gave to a thread of another
// process is no process.
func TestProcessAliveThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("thread IDs share the pid space on Linux only")
	}
	if !procIsOurs() {
		// /proc of another pid namespace: threadOnly rightly trusts
		// kill(2) alone there.
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and /proc is not of this process's pid namespace")
		}
		t.Skip("skipped (not in CI): /proc is not of this process's pid namespace")
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatalf("list this process's threads: %v", err)
	}
	self := strconv.Itoa(os.Getpid())
	checked := 0
	for _, task := range tasks {
		if task.Name() == self {
			continue
		}
		// The thread may end meanwhile (AliveNo either way), but the Go
		// runtime's threads live as long as the process.
		if got := ProcessAlive(task.Name()); got != AliveNo {
			t.Errorf("ProcessAlive(%s), a thread of this process = %q, want %q", task.Name(), got, AliveNo)
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no thread besides the main one in /proc/self/task (%d entries)", len(tasks))
	}
	if got := ProcessAlive(self); got != AliveYes {
		t.Errorf("ProcessAlive(own pid) = %q, want %q", got, AliveYes)
	}
}
