package commands

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/store/redisstore"
)

// RedisFlags select a Redis store in the gunicorn-prometheus-exporter
// layout. Without --redis-url, the environment the Python exporter reads
// (PROMETHEUS_REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD,
// REDIS_KEY_PREFIX) is used when no directory is given.
type RedisFlags struct {
	URLs               []string
	Prefix             string
	Cluster            bool
	SentinelMaster     string
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
	ServerName         string
	Timeout            time.Duration
	// PasswordFile holds the Redis password (one line), so that it is in
	// no URL and no process listing.
	PasswordFile string
}

// Register adds the Redis flags to cmd.
func (rf *RedisFlags) Register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&rf.URLs, "redis-url", nil, "Redis store URL, redis:// or rediss://, user/password/db in the URL; repeat for Cluster seed nodes or sentinels (default from PROMETHEUS_REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_DB/REDIS_PASSWORD)")
	fs.StringVar(&rf.Prefix, "redis-prefix", "", "Redis key prefix (default $REDIS_KEY_PREFIX, then gunicorn)")
	fs.BoolVar(&rf.Cluster, "redis-cluster", false, "the Redis URLs are nodes of a Redis Cluster (every master is scanned)")
	fs.StringVar(&rf.SentinelMaster, "redis-sentinel-master", "", "the Redis URLs are sentinels; connect to the master of this name")
	fs.StringVar(&rf.CAFile, "redis-tls-ca", "", "PEM file of the CA that signs the Redis server certificate (rediss://)")
	fs.StringVar(&rf.CertFile, "redis-tls-cert", "", "PEM client certificate for Redis TLS")
	fs.StringVar(&rf.KeyFile, "redis-tls-key", "", "PEM key of the client certificate")
	fs.BoolVar(&rf.InsecureSkipVerify, "redis-tls-insecure-skip-verify", false, "accept any Redis server certificate")
	fs.StringVar(&rf.ServerName, "redis-tls-server-name", "", "name to check in the Redis server certificate")
	fs.DurationVar(&rf.Timeout, "redis-timeout", redisstore.DefaultReadTimeout, "timeout for connecting to Redis and for each reply (go-redis may try a command again after a timeout or a broken connection, up to twice)")
	fs.StringVar(&rf.PasswordFile, "redis-password-file", "", "file holding the Redis password (its first line), instead of a password in the URL, which ps shows")
}

// Given reports whether a Redis store was named on the command line.
func (rf *RedisFlags) Given() bool {
	return len(rf.URLs) > 0 || rf.Cluster || rf.SentinelMaster != ""
}

// Config builds the redisstore configuration from the flags, filling what
// they leave open from the environment the Python exporter reads.
func (rf *RedisFlags) Config(f *Factory) redisstore.Config {
	cfg := redisstore.ConfigFromEnv(f.Getenv)
	if len(rf.URLs) > 0 {
		cfg.URLs = append([]string(nil), rf.URLs...)
	}
	if rf.Prefix != "" {
		cfg.Prefix = rf.Prefix
	}
	cfg.Cluster = rf.Cluster
	cfg.SentinelMaster = rf.SentinelMaster
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = rf.CAFile, rf.CertFile, rf.KeyFile
	cfg.InsecureSkipVerify = rf.InsecureSkipVerify
	cfg.ServerName = rf.ServerName
	cfg.DialTimeout, cfg.ReadTimeout = rf.Timeout, rf.Timeout
	return cfg
}

func (rf *RedisFlags) register(cmd *cobra.Command) { rf.Register(cmd) }

// config returns the Redis configuration when the flags name a Redis store.
func (rf *RedisFlags) config(f *Factory) (any, bool, error) {
	if !rf.Given() {
		if rf.PasswordFile != "" && !rf.envGiven(f) {
			return nil, false, UsageErrorf("--redis-password-file given without a Redis store (--redis-url)")
		}
		return nil, false, nil
	}
	cfg, err := rf.Resolve(f)
	if err != nil {
		return nil, false, err
	}
	return cfg, true, nil
}

// Resolve is Config checked: every --redis-url must be a Redis URL (a
// usage error saying which URL was meant otherwise), and the password
// is read from --redis-password-file.
func (rf *RedisFlags) Resolve(f *Factory) (redisstore.Config, error) {
	for _, u := range rf.URLs {
		if err := redisstore.CheckURL(u); err != nil {
			return redisstore.Config{}, UsageErrorf("--redis-url: %v", err)
		}
	}
	cfg := rf.Config(f)
	if err := rf.readPassword(&cfg); err != nil {
		return redisstore.Config{}, err
	}
	return cfg, nil
}

// readPassword sets cfg's password from --redis-password-file: its first
// line, without the line end. A password in a URL as well is a usage
// error, since one of the two would be ignored.
func (rf *RedisFlags) readPassword(cfg *redisstore.Config) error {
	if rf.PasswordFile == "" {
		return nil
	}
	for _, u := range cfg.URLs {
		if p, err := url.Parse(u); err == nil && p.User != nil {
			if _, set := p.User.Password(); set {
				return UsageErrorf("--redis-password-file given and a Redis URL (or REDIS_PASSWORD) has a password too: give one of them")
			}
		}
	}
	b, err := os.ReadFile(rf.PasswordFile)
	if err != nil {
		return fmt.Errorf("--redis-password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return fmt.Errorf("--redis-password-file %s: the first line is empty, want the password", rf.PasswordFile)
	}
	cfg.Password = line
	return nil
}

// envGiven reports whether the environment names a Redis store
// (PROMETHEUS_REDIS_URL or REDIS_HOST).
func (rf *RedisFlags) envGiven(f *Factory) bool {
	return f.Getenv("PROMETHEUS_REDIS_URL") != "" || f.Getenv("REDIS_HOST") != ""
}

// fromEnv returns the Redis configuration when only the environment names
// a Redis store.
func (rf *RedisFlags) fromEnv(f *Factory) (any, bool, error) {
	if !rf.envGiven(f) {
		return nil, false, nil
	}
	cfg, err := rf.Resolve(f)
	if err != nil {
		return nil, false, err
	}
	return cfg, true, nil
}
