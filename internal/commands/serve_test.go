package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func serveFactory(env map[string]string) (*Factory, *bytes.Buffer, *syncBuffer) {
	out, errOut := &bytes.Buffer{}, &syncBuffer{}
	return &Factory{
		IO:     &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Getenv: func(k string) string { return env[k] },
		Now:    time.Now,
	}, out, errOut
}

func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, o *ServeOptions)
		usage string // non-empty: a usage error containing this
	}{
		{
			name: "defaults",
			args: []string{"--dir", "/x"},
			check: func(t *testing.T, o *ServeOptions) {
				if len(o.ListenAddresses) != 1 || o.ListenAddresses[0] != "127.0.0.1:9877" {
					t.Errorf("listen %v", o.ListenAddresses)
				}
				if o.TelemetryPath != "/metrics" || o.WebConfigFile != "" || o.ScrapeTimeout != 10*time.Second ||
					o.Partial || o.SelfMetricsInTelemetry || o.For != 0 || o.ShutdownGrace != 15*time.Second ||
					o.LogLevel != "info" || o.LogFormat != "logfmt" {
					t.Errorf("defaults: %+v", o)
				}
			},
		},
		{
			name: "all flags",
			args: []string{"--dir", "/x", "--web.listen-address", ":9100", "--web.listen-address", "[::1]:9101", "--web.listen-address", "127.0.0.1:0",
				"--web.telemetry-path", "/store", "--web.config.file", "web.yml", "--scrape-timeout", "3s",
				"--partial", "--self-metrics-in-telemetry", "--for", "10m", "--shutdown-grace", "2s",
				"--log.level", "debug", "--log.format", "json"},
			check: func(t *testing.T, o *ServeOptions) {
				if strings.Join(o.ListenAddresses, ",") != ":9100,[::1]:9101,127.0.0.1:0" || o.TelemetryPath != "/store" ||
					o.WebConfigFile != "web.yml" || o.ScrapeTimeout != 3*time.Second || !o.Partial ||
					!o.SelfMetricsInTelemetry || o.For != 10*time.Minute || o.ShutdownGrace != 2*time.Second ||
					o.LogLevel != "debug" || o.LogFormat != "json" {
					t.Errorf("parsed: %+v", o)
				}
			},
		},
		{name: "bad log level", args: []string{"--dir", "/x", "--log.level", "trace"}, usage: "--log.level"},
		{name: "bad log format", args: []string{"--dir", "/x", "--log.format", "xml"}, usage: "--log.format"},
		{name: "bad address", args: []string{"--dir", "/x", "--web.listen-address", "9877"}, usage: "--web.listen-address"},
		{name: "port out of range", args: []string{"--dir", "/x", "--web.listen-address", "127.0.0.1:99999"}, usage: "--web.listen-address"},
		{name: "unknown service", args: []string{"--dir", "/x", "--web.listen-address", ":nosuchservice"}, usage: "--web.listen-address"},
		{name: "relative telemetry path", args: []string{"--dir", "/x", "--web.telemetry-path", "metrics"}, usage: "--web.telemetry-path"},
		{name: "reserved telemetry path", args: []string{"--dir", "/x", "--web.telemetry-path", "/-/x"}, usage: "--web.telemetry-path"},
		{name: "zero timeout", args: []string{"--dir", "/x", "--scrape-timeout", "0s"}, usage: "--scrape-timeout"},
		{name: "negative for", args: []string{"--dir", "/x", "--for", "-1s"}, usage: "--for"},
		{name: "bad duration", args: []string{"--dir", "/x", "--for", "soon"}, usage: "invalid argument"},
		{name: "zero grace", args: []string{"--dir", "/x", "--shutdown-grace", "0s"}, usage: "--shutdown-grace"},
		{name: "positional", args: []string{"--dir", "/x", "extra"}, usage: "unknown command"},
		{
			name: "sidecar",
			args: []string{"--dir", "/x", "--compact-every", "30s", "--compact-min-idle", "2m", "--compact-stale-after", "1h", "--drop-dead-gauges-after", "3h"},
			check: func(t *testing.T, o *ServeOptions) {
				if o.CompactEvery != 30*time.Second || o.CompactMinIdle != 2*time.Minute || o.CompactStaleAfter != time.Hour ||
					o.DropDeadGaugesAfter != 3*time.Hour || o.CompactLocal {
					t.Errorf("parsed: %+v", o)
				}
			},
		},
		{name: "compaction flag without interval", args: []string{"--dir", "/x", "--drop-dead-gauges-after", "1h"}, usage: "give --compact-every"},
		{name: "negative interval", args: []string{"--dir", "/x", "--compact-every", "-1s"}, usage: "--compact-every"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, _ := serveFactory(tc.env)
			var got *ServeOptions
			cmd := NewCmdServe(f, func(ctx context.Context, o *ServeOptions) error {
				got = o
				return nil
			})
			root := NewRootCmd(f)
			root.RemoveCommand(findCmd(root, "serve"))
			root.AddCommand(cmd)
			root.SetArgs(append([]string{"serve"}, tc.args...))
			err := root.ExecuteContext(context.Background())
			if tc.usage != "" {
				var ue *usageError
				if err == nil || !strings.Contains(err.Error(), tc.usage) || !(errors.As(err, &ue) || isCobraUsage(err)) {
					t.Fatalf("err %v, want a usage error containing %q", err, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			if got == nil {
				t.Fatal("runF not called")
			}
			tc.check(t, got)
		})
	}
}

func findCmd(root *cobra.Command, name string) *cobra.Command {
	c, _, _ := root.Find([]string{name})
	return c
}

// copySample copies testdata/sample-store into a temporary directory.
func copySample(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startServe runs serveRun for the command line args (store flags
// included) until ctx ends and returns the bound base URL and Run's
// result channel.
func startServe(t *testing.T, ctx context.Context, args ...string) (string, chan error, *syncBuffer) {
	t.Helper()
	f, _, errOut := serveFactory(nil)
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	cmd := NewCmdServe(f, func(ctx context.Context, o *ServeOptions) error {
		o.OnListen = func(a []net.Addr) { addrc <- a[0] }
		return serveRun(ctx, o)
	})
	cmd.SetArgs(append([]string{"--web.listen-address", "127.0.0.1:0"}, args...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	select {
	case a := <-addrc:
		return "http://" + a.String(), done, errOut
	case err := <-done:
		t.Fatalf("serve: %v\nlog:\n%s", err, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	return "", nil, nil
}

func TestServeMatchesDump(t *testing.T) {
	dir := copySample(t)
	f, out, _ := serveFactory(nil)
	var sf StoreFlags
	sf.Dir = dir
	if err := dumpRun(context.Background(), &DumpOptions{IO: f.IO, Format: "text",
		Store: func(ctx context.Context) (store.Store, error) { return sf.Open(ctx, f) }}); err != nil {
		t.Fatalf("dump: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	url, done, logs := startServe(t, ctx, "--dir", dir, "--log.level", "debug", "--log.format", "json")
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != out.String() {
		t.Errorf("serve: status %d; body equals dump's output: %v (%d vs %d bytes)", resp.StatusCode, string(body) == out.String(), len(body), out.Len())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after SIGTERM-like cancel: %v, want nil (exit 0)", err)
	}
	// JSON logs on stderr, with the request log at debug level.
	var sawRequest bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "request" && m["path"] == "/metrics" && m["level"] == "DEBUG" {
			sawRequest = true
		}
	}
	if !sawRequest {
		t.Errorf("no debug request log for /metrics:\n%s", logs.String())
	}
}

func TestServeForExits(t *testing.T) {
	dir := copySample(t)
	f, _, errOut := serveFactory(nil)
	begin := time.Now()
	code := Execute(context.Background(), f, []string{"serve", "--dir", dir, "--web.listen-address", "127.0.0.1:0", "--for", "300ms"})
	if code != ExitOK {
		t.Errorf("exit %d, want 0; stderr:\n%s", code, errOut.String())
	}
	if took := time.Since(begin); took < 300*time.Millisecond || took > 20*time.Second {
		t.Errorf("--for 300ms stopped after %s", took)
	}
	if !strings.Contains(errOut.String(), "--for 300ms elapsed") {
		t.Errorf("stop reason not logged:\n%s", errOut.String())
	}
}

func TestServeStoreErrors(t *testing.T) {
	t.Run("missing directory", func(t *testing.T) {
		f, _, errOut := serveFactory(nil)
		code := Execute(context.Background(), f, []string{"serve", "--dir", filepath.Join(t.TempDir(), "nope"), "--web.listen-address", "127.0.0.1:0"})
		if code != ExitError || !strings.Contains(errOut.String(), "nope") {
			t.Errorf("exit %d, stderr %q; want 1 naming the directory", code, errOut.String())
		}
	})
	t.Run("no store", func(t *testing.T) {
		f, _, errOut := serveFactory(nil)
		code := Execute(context.Background(), f, []string{"serve"})
		if code != ExitUsage {
			t.Errorf("exit %d, stderr %q; want 2", code, errOut.String())
		}
	})
	t.Run("bad web config", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "web.yml")
		if err := os.WriteFile(cfg, []byte("basic_auth_users:\n  alice: notahash\n  : x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, _, errOut := serveFactory(nil)
		code := Execute(context.Background(), f, []string{"serve", "--dir", copySample(t), "--web.config.file", cfg, "--web.listen-address", "127.0.0.1:0"})
		if code != ExitError || !strings.Contains(errOut.String(), cfg) {
			t.Errorf("exit %d, stderr %q; want 1 naming %s", code, errOut.String(), cfg)
		}
	})
}

// TestServeHelpNamesStopSignals: serve's help names every signal that
// stops it (Main stops on SIGHUP too, which README said and the help did
// not) and how /-/ready checks a Redis store.
func TestServeHelpNamesStopSignals(t *testing.T) {
	f, _, _ := serveFactory(nil)
	long := NewCmdServe(f, nil).Long
	for _, want := range []string{"SIGINT", "SIGTERM", "SIGHUP", "PING"} {
		if !strings.Contains(long, want) {
			t.Errorf("serve --help does not mention %s", want)
		}
	}
}
