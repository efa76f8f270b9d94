package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures a test redis-server.
type RedisOptions struct {
	// Password, when set, is required from clients (requirepass).
	Password string
	// Args are extra redis-server arguments, e.g. "--maxmemory", "10mb".
	Args []string
	// TLS, when set, makes the server speak TLS only, with this
	// certificate and key (PEM files); clients need no certificate.
	TLS *RedisTLS
}

// RedisTLS names a server certificate and key in PEM files.
type RedisTLS struct {
	CertFile, KeyFile string
	// AuthClients makes the server require a client certificate signed
	// by CertFile.
	AuthClients bool
}

// RedisServer is a redis-server process a test started on a loopback port.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string
	pass string
	tls  *RedisTLS
	// confFile, when set, is passed first (sentinels need a config file).
	confFile string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// RedisServerPath returns the redis-server binary (PATH, then /usr/bin),
// or "" when there is none.
func RedisServerPath() string {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	return ""
}

// StartRedis starts a real redis-server on a free loopback port with its
// files in a t.TempDir(), without persistence, and waits until it answers
// PING. The server is killed when the test ends. Without redis-server
// the test is skipped (failed when CI=true).
func StartRedis(t testing.TB, opts ...RedisOptions) *RedisServer {
	t.Helper()
	var o RedisOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	bin := RedisServerPath()
	if bin == "" {
		Unavailable(t, "redis-server not found on PATH or in /usr/bin")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(false)
		if err != nil {
			t.Fatalf("redis: no free port: %v", err)
		}
		s := &RedisServer{t: t, bin: bin, dir: t.TempDir(), port: port, args: o.Args, pass: o.Password, tls: o.TLS}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// Addr is the server's host:port.
func (s *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's port.
func (s *RedisServer) Port() int { return s.port }

// URL is a redis:// (rediss:// with TLS) URL of the server, with its
// password if any.
func (s *RedisServer) URL() string {
	scheme := "redis://"
	if s.tls != nil {
		scheme = "rediss://"
	}
	if s.pass != "" {
		return scheme + ":" + s.pass + "@" + s.Addr() + "/0"
	}
	return scheme + s.Addr() + "/0"
}

// Client returns a go-redis client of the server, closed when the test ends.
func (s *RedisServer) Client() *redis.Client {
	o := &redis.Options{Addr: s.Addr(), Password: s.pass}
	o.TLSConfig = s.clientTLS()
	c := redis.NewClient(o)
	s.t.Cleanup(func() { c.Close() })
	return c
}

func (s *RedisServer) commandLine() []string {
	var args []string
	if s.confFile != "" {
		args = append(args, s.confFile)
	}
	port := strconv.Itoa(s.port)
	if s.tls != nil {
		auth := "no"
		if s.tls.AuthClients {
			auth = "yes"
		}
		args = append(args, "--port", "0", "--tls-port", port,
			"--tls-cert-file", s.tls.CertFile, "--tls-key-file", s.tls.KeyFile,
			"--tls-ca-cert-file", s.tls.CertFile, "--tls-auth-clients", auth)
	} else {
		args = append(args, "--port", port)
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "redis.log",
		"--protected-mode", "no",
	)
	if s.pass != "" {
		args = append(args, "--requirepass", s.pass)
	}
	return append(args, s.args...)
}

func (s *RedisServer) start() error {
	cmd := exec.Command(s.bin, s.commandLine()...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pingRaw(s.Addr(), s.clientTLS()) == nil {
			s.mu.Lock()
			s.cmd = cmd
			s.mu.Unlock()
			go func() { <-exited }()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server on port %d exited: %w; log: %s", s.port, err, s.log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("redis-server on port %d did not answer PING within 10s; log: %s", s.port, s.log())
		}
	}
}

func (s *RedisServer) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop kills the server at once (as a crash would) and waits until its
// port refuses connections. Stopping a stopped server does nothing.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Restart starts a stopped server again on the same port (empty: nothing
// was persisted).
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redis-server restart: %v", err)
	}
}

// clientTLS is the TLS configuration of the test's own clients: nil for a
// plain server; any server certificate accepted; the server's own
// certificate as the client's when it wants one (it signs itself).
func (s *RedisServer) clientTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	c := &tls.Config{InsecureSkipVerify: true}
	if s.tls.AuthClients {
		cert, err := tls.LoadX509KeyPair(s.tls.CertFile, s.tls.KeyFile)
		if err != nil {
			s.t.Fatalf("client certificate: %v", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

// pingRaw sends PING; any reply (PONG, or NOAUTH from a server with a
// password) means the server is up. cfg is nil for a plain server.
func pingRaw(addr string, cfg *tls.Config) error {
	var c net.Conn
	var err error
	if cfg != nil {
		d := &net.Dialer{Timeout: 200 * time.Millisecond}
		c, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		c, err = net.DialTimeout("tcp", addr, 200*time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "-LOADING") {
		return fmt.Errorf("loading")
	}
	return nil
}

// freePort returns a loopback port that is free now; with bus also the
// port+10000 a Cluster node's bus uses.
func freePort(bus bool) (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !bus {
			l.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port pair found")
}

// RedisCluster is a real 3-master Redis Cluster (no replicas).
type RedisCluster struct {
	Nodes []*RedisServer
}

// StartCluster starts 3 redis-server nodes with --cluster-enabled yes,
// splits the 16384 slots between them, joins them and waits until every
// node reports cluster_state:ok. The nodes are killed when the test ends.
func StartCluster(t testing.TB) *RedisCluster {
	t.Helper()
	bin := RedisServerPath()
	if bin == "" {
		Unavailable(t, "redis-server not found on PATH or in /usr/bin")
	}
	rc := &RedisCluster{}
	for i := 0; i < 3; i++ {
		var n *RedisServer
		var lastErr error
		for attempt := 0; attempt < 5 && n == nil; attempt++ {
			port, err := freePort(true)
			if err != nil {
				t.Fatalf("redis cluster: %v", err)
			}
			s := &RedisServer{t: t, bin: bin, dir: t.TempDir(), port: port, args: []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000",
				"--cluster-require-full-coverage", "yes",
			}}
			if lastErr = s.start(); lastErr == nil {
				n = s
				t.Cleanup(s.Stop)
			}
		}
		if n == nil {
			t.Fatalf("redis cluster node did not start: %v", lastErr)
		}
		rc.Nodes = append(rc.Nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rc.form(ctx); err != nil {
		t.Fatalf("redis cluster: %v", err)
	}
	return rc
}

func (rc *RedisCluster) form(ctx context.Context) error {
	clients := make([]*redis.Client, len(rc.Nodes))
	for i, n := range rc.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.Addr()})
		defer clients[i].Close()
	}
	per := 16384 / len(rc.Nodes)
	for i, c := range clients {
		lo, hi := i*per, (i+1)*per-1
		if i == len(clients)-1 {
			hi = 16383
		}
		if err := c.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			return fmt.Errorf("node %s: add slots %d-%d: %w", rc.Nodes[i].Addr(), lo, hi, err)
		}
		if err := c.Do(ctx, "cluster", "set-config-epoch", i+1).Err(); err != nil {
			return fmt.Errorf("node %s: set config epoch: %w", rc.Nodes[i].Addr(), err)
		}
	}
	for _, n := range rc.Nodes[1:] {
		if err := clients[0].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(n.port)).Err(); err != nil {
			return fmt.Errorf("node %s: meet %s: %w", rc.Nodes[0].Addr(), n.Addr(), err)
		}
	}
	for {
		ok := true
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster_state did not become ok: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Addrs are the nodes' host:port addresses.
func (rc *RedisCluster) Addrs() []string {
	out := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// URLs are redis:// URLs of the nodes.
func (rc *RedisCluster) URLs() []string {
	out := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		out[i] = n.URL()
	}
	return out
}

// Client returns a go-redis Cluster client, closed when the test ends.
func (rc *RedisCluster) Client() *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs()})
	if len(rc.Nodes) > 0 {
		rc.Nodes[0].t.Cleanup(func() { c.Close() })
	}
	return c
}

// StopNode kills node i.
func (rc *RedisCluster) StopNode(i int) { rc.Nodes[i].Stop() }

// StartSentinel starts a real Redis Sentinel (redis-server --sentinel) on
// a free loopback port that monitors master under name, and waits until
// it reports the master's address. It is killed when the test ends.
func StartSentinel(t testing.TB, master *RedisServer, name string) *RedisServer {
	t.Helper()
	bin := RedisServerPath()
	if bin == "" {
		Unavailable(t, "redis-server not found on PATH or in /usr/bin")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(false)
		if err != nil {
			t.Fatalf("sentinel: no free port: %v", err)
		}
		dir := t.TempDir()
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n", port, dir, name, master.port)
		if master.pass != "" {
			conf += fmt.Sprintf("sentinel auth-pass %s %s\n", name, master.pass)
		}
		path := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &RedisServer{t: t, bin: bin, dir: dir, port: port, args: []string{"--sentinel"}}
		s.confFile = path
		if lastErr = s.start(); lastErr != nil {
			continue
		}
		t.Cleanup(s.Stop)
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		defer c.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			addr, err := c.GetMasterAddrByName(context.Background(), name).Result()
			if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(master.port) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel %s does not know master %s: %v %v", s.Addr(), name, addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatalf("redis sentinel did not start: %v", lastErr)
	return nil
}

// MoveKeySlots moves every slot of node from that holds a key to node to,
// keys and all, as redis-cli --cluster reshard does it slot by slot
// (SETSLOT IMPORTING and MIGRATING, MIGRATE of the slot's keys, SETSLOT
// NODE on every node), and returns how many slots it moved. It returns
// an error rather than failing the test, so that it may run on any
// goroutine.
func (rc *RedisCluster) MoveKeySlots(ctx context.Context, from, to int) (int, error) {
	clients := make([]*redis.Client, len(rc.Nodes))
	ids := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.Addr()})
		defer clients[i].Close()
		id, err := clients[i].ClusterMyID(ctx).Result()
		if err != nil {
			return 0, fmt.Errorf("node %s: cluster myid: %w", n.Addr(), err)
		}
		ids[i] = id
	}
	src, dst := clients[from], clients[to]
	slots := map[int64]bool{}
	var cursor uint64
	for {
		keys, next, err := src.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("node %s: scan: %w", rc.Nodes[from].Addr(), err)
		}
		cmds, err := src.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.ClusterKeySlot(ctx, k)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("node %s: cluster keyslot: %w", rc.Nodes[from].Addr(), err)
		}
		for _, c := range cmds {
			slots[c.(*redis.IntCmd).Val()] = true
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	for slot := range slots {
		if err := dst.Do(ctx, "cluster", "setslot", slot, "importing", ids[from]).Err(); err != nil {
			return 0, fmt.Errorf("node %s: setslot %d importing: %w", rc.Nodes[to].Addr(), slot, err)
		}
		if err := src.Do(ctx, "cluster", "setslot", slot, "migrating", ids[to]).Err(); err != nil {
			return 0, fmt.Errorf("node %s: setslot %d migrating: %w", rc.Nodes[from].Addr(), slot, err)
		}
		for {
			keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
			if err != nil {
				return 0, fmt.Errorf("node %s: getkeysinslot %d: %w", rc.Nodes[from].Addr(), slot, err)
			}
			if len(keys) == 0 {
				break
			}
			args := []any{"migrate", "127.0.0.1", rc.Nodes[to].port, "", 0, 10000, "keys"}
			for _, k := range keys {
				args = append(args, k)
			}
			if err := src.Do(ctx, args...).Err(); err != nil {
				return 0, fmt.Errorf("node %s: migrate slot %d: %w", rc.Nodes[from].Addr(), slot, err)
			}
		}
		for _, i := range append([]int{to, from}, others(len(rc.Nodes), from, to)...) {
			if err := clients[i].Do(ctx, "cluster", "setslot", slot, "node", ids[to]).Err(); err != nil {
				return 0, fmt.Errorf("node %s: setslot %d node: %w", rc.Nodes[i].Addr(), slot, err)
			}
		}
	}
	return len(slots), nil
}

// others returns 0..n-1 without a and b.
func others(n, a, b int) []int {
	var out []int
	for i := range n {
		if i != a && i != b {
			out = append(out, i)
		}
	}
	return out
}
