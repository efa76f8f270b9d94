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
