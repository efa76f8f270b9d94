package commands

import (
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
	fs.DurationVar(&rf.Timeout, "redis-timeout", redisstore.DefaultReadTimeout, "timeout for connecting to Redis and for each reply")
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
		return nil, false, nil
	}
	return rf.Config(f), true, nil
}

// fromEnv returns the Redis configuration when only the environment names
// a Redis store (PROMETHEUS_REDIS_URL or REDIS_HOST).
func (rf *RedisFlags) fromEnv(f *Factory) (any, bool) {
	if f.Getenv("PROMETHEUS_REDIS_URL") == "" && f.Getenv("REDIS_HOST") == "" {
		return nil, false
	}
	return rf.Config(f), true
}
