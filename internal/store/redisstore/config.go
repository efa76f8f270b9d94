package redisstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults used for the zero fields of a Config.
const (
	DefaultPrefix      = "gunicorn"
	DefaultURL         = "redis://localhost:6379/0"
	DefaultDialTimeout = 5 * time.Second
	DefaultReadTimeout = 5 * time.Second
	DefaultBatchSize   = 1000
)

// Config says how to reach a gunicorn-prometheus-exporter Redis store.
// Passwords travel inside URLs and never leave this package in clear text:
// use Redacted to show a Config.
type Config struct {
	// URLs are redis:// or rediss:// URLs with optional user, password
	// and database ("redis://:secret@host:6379/0"). Several URLs are the
	// seed nodes of a Redis Cluster or the sentinels of a Sentinel set.
	// Empty means DefaultURL.
	URLs []string
	// Cluster makes the store a Redis Cluster client even for one URL.
	Cluster bool
	// SentinelMaster is the master name when URLs are sentinels.
	SentinelMaster string

	// CAFile, CertFile and KeyFile are PEM files for TLS: the CA that signs
	// the server certificate, and a client certificate and its key.
	CAFile, CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
	// ServerName overrides the name checked in the server certificate.
	ServerName string

	// Prefix is the key prefix (REDIS_KEY_PREFIX); a trailing ':' is
	// stripped. Empty means DefaultPrefix.
	Prefix string

	// DialTimeout and ReadTimeout bound connecting and each reply
	// (defaults DefaultDialTimeout and DefaultReadTimeout).
	DialTimeout, ReadTimeout time.Duration
	// BatchSize is the number of commands sent per pipeline (default
	// DefaultBatchSize); SCAN asks for ten times as many keys per call.
	BatchSize int
	// TTL, when positive, is set on every key WriteShard writes.
	TTL time.Duration
	// Password, when set, is the password of every URL (and sentinel),
	// read from a file so that it is not in a URL others can see in ps.
	Password string
}

// CheckURL reports what is wrong with a Redis URL as a user would give it
// (never echoing a password): "host:port" without a scheme is the usual
// mistake, answered with the URL meant.
func CheckURL(raw string) error {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		if raw == "" {
			return errors.New("empty Redis URL; did you mean redis://localhost:6379?")
		}
		hint := redactURL("redis://" + raw)
		return fmt.Errorf("%q is not a Redis URL; did you mean %s?", strings.TrimPrefix(hint, "redis://"), hint)
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
	default:
		return fmt.Errorf("%s: scheme %q: want redis:// (or rediss:// for TLS, unix:// for a socket)", redactURL(raw), scheme)
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", redactURL(raw), scrubErr(plainURLError(err), raw))
	}
	if o.DB < 0 {
		return fmt.Errorf("%s: database %d: want a number from 0", redactURL(raw), o.DB)
	}
	if u, err := url.Parse(raw); err == nil && u.Scheme != "unix" { // a socket's path is no database
		// go-redis takes ?db= over the path's number without a word.
		if q := u.Query().Get("db"); q != "" {
			if p := strings.Trim(u.Path, "/"); p != "" && p != q {
				return fmt.Errorf("%s: two databases, %s in the path and %s in ?db=: give one", redactURL(raw), p, q)
			}
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%s: port %s: want 1 to 65535", redactURL(raw), port)
			}
		}
	}
	return nil
}

// ConfigFromEnv returns the Config the Python exporter would use given its
// environment: REDIS_HOST (localhost), REDIS_PORT (6379), REDIS_DB (0),
// REDIS_PASSWORD and REDIS_KEY_PREFIX; PROMETHEUS_REDIS_URL overrides host
// and port (REDIS_DB and REDIS_PASSWORD still fill in what the URL lacks).
func ConfigFromEnv(getenv func(string) string) Config {
	c := Config{Prefix: getenv("REDIS_KEY_PREFIX")}
	db, password := getenv("REDIS_DB"), getenv("REDIS_PASSWORD")
	if raw := getenv("PROMETHEUS_REDIS_URL"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			// Keep it as given: Open reports it (without the password).
			c.URLs = []string{raw}
			return c
		}
		if _, set := u.User.Password(); !set && password != "" {
			name := ""
			if u.User != nil {
				name = u.User.Username()
			}
			u.User = url.UserPassword(name, password)
		}
		if strings.Trim(u.Path, "/") == "" && db != "" {
			u.Path = "/" + db
		}
		c.URLs = []string{u.String()}
		return c
	}
	host, port := getenv("REDIS_HOST"), getenv("REDIS_PORT")
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "6379"
	}
	if db == "" {
		db = "0"
	}
	u := url.URL{Scheme: "redis", Host: net.JoinHostPort(host, port), Path: "/" + db}
	if password != "" {
		u.User = url.UserPassword("", password)
	}
	c.URLs = []string{u.String()}
	return c
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if len(c.URLs) == 0 {
		c.URLs = []string{DefaultURL}
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, ":")
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	return c
}

// Redacted describes the Config for humans, with every password replaced
// by "xxxxx", e.g. "redis://:xxxxx@localhost:6379/0 prefix gunicorn".
func (c Config) Redacted() string {
	c = c.withDefaults()
	var b strings.Builder
	for i, raw := range c.URLs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(redactURL(raw))
	}
	switch {
	case c.SentinelMaster != "":
		fmt.Fprintf(&b, " sentinel master %s", c.SentinelMaster)
	case c.Cluster || len(c.URLs) > 1:
		b.WriteString(" cluster")
	}
	fmt.Fprintf(&b, " prefix %s", c.Prefix)
	return b.String()
}

var userinfoRE = regexp.MustCompile(`(://[^/@]*?):[^/]*@`)

// redactURL masks the password of a URL, also of one url.Parse rejects.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.RawQuery = redactQuery(u.Query())
		return u.Redacted()
	}
	return userinfoRE.ReplaceAllString(raw, "$1:xxxxx@")
}

func redactQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q[k] = []string{"xxxxx"}
		}
	}
	return q.Encode()
}

// clientOptions turns c (with defaults) into go-redis options. The
// returned secrets are the passwords found, for scrubbing error text.
func (c Config) clientOptions() (*redis.UniversalOptions, []string, error) {
	opts := &redis.UniversalOptions{
		DialTimeout:           c.DialTimeout,
		ReadTimeout:           c.ReadTimeout,
		WriteTimeout:          c.ReadTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            2,
		DialerRetries:         2,
		MasterName:            c.SentinelMaster,
		IsClusterMode:         c.Cluster,
		// A new connection costs one round trip (HELLO) instead of three:
		// no CLIENT SETINFO and no CLIENT MAINT_NOTIFICATIONS, which a
		// one-shot reader has no use for (and which servers before 7.2
		// answer with an error anyway).
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	var secrets []string
	useTLS := false
	for i, raw := range c.URLs {
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("redis URL %s: %w", redactURL(raw), scrubErr(plainURLError(err), raw))
		}
		if o.Password != "" {
			secrets = append(secrets, o.Password)
		}
		opts.Addrs = append(opts.Addrs, o.Addr)
		if o.TLSConfig != nil {
			useTLS = true
		}
		if i == 0 {
			opts.Username, opts.Password, opts.DB = o.Username, o.Password, o.DB
			if o.TLSConfig != nil {
				opts.TLSConfig = o.TLSConfig
			}
		}
	}
	if c.Password != "" {
		opts.Password = c.Password
		secrets = append(secrets, c.Password)
	}
	if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.InsecureSkipVerify || c.ServerName != "" {
		useTLS = true
	}
	if useTLS {
		tc, err := c.tlsConfig(opts.TLSConfig)
		if err != nil {
			return nil, nil, err
		}
		opts.TLSConfig = tc
	}
	return opts, secrets, nil
}

// plainURLError drops the URL text url.Parse puts into its errors.
func plainURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c Config) tlsConfig(base *tls.Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		tc = base.Clone()
	}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	tc.InsecureSkipVerify = c.InsecureSkipVerify
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis TLS CA file %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, errors.New("redis TLS: a client certificate needs both a cert file and a key file")
		}
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis TLS client certificate %s: %w", c.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// scrubbedError hides secrets in an error's text while keeping the chain.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubErr returns err with every secret in its text replaced by "xxxxx".
func scrubErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}
