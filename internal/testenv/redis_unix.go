//go:build unix

package testenv

import "syscall"

// Pause stops the server's process (SIGSTOP): connections are still
// accepted by the kernel, but nothing is answered until Resume, as with a
// server stalled by a long command. Stop kills a paused server too.
func (s *RedisServer) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume lets a paused server run again (SIGCONT).
func (s *RedisServer) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *RedisServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("redis-server on port %d is not running", s.port)
		return
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redis-server on port %d: %v: %v", s.port, sig, err)
	}
}
