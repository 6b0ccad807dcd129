// Package config loads the worker's YAML configuration (DESIGN.md §7): it validates the file
// against schemas/config.schema.json with errors naming file, line and field, expands ${ENV}
// references, resolves relative paths against the file's folder, fills defaults and checks what
// the schema cannot.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/robfig/cron/v3"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/guard"
	"github.com/scimflow/scimflow/internal/inventory"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/yamlschema"
)

// SchemaName is the embedded schema of the configuration file.
const SchemaName = "config.schema.json"

// Defaults that belong to no other package; the others are the owning package's constants
// (events.DefaultLanes, pipeline.DefaultMaxWindows, ...). schemas/config.schema.json states each
// default with the "default" keyword, and a test checks that they agree.
const (
	DefaultNATSListen = "127.0.0.1:4222"
	DefaultHTTPListen = "127.0.0.1:9090"
	DefaultSchedule   = "@every 15m"
)

// Config is the worker configuration.
type Config struct {
	// File is the path the configuration was read from.
	File string `yaml:"-"`

	NATS       NATS             `yaml:"nats"`
	Target     provision.Config `yaml:"target"`
	Model      string           `yaml:"model"`
	SyncWindow SyncWindow       `yaml:"syncWindow"`
	Worker     Worker           `yaml:"worker"`
	HTTP       HTTP             `yaml:"http"`
	Log        Log              `yaml:"log"`

	// DeletionGuard holds deletes and disables beyond its limits per sync window until an operator
	// approves them, and refuses protected objects (docs/deletion-guard.md). On by default:
	// maxDeletes 100, maxPercent 10; an explicit 0 switches a limit off.
	DeletionGuard guard.Config `yaml:"deletionGuard"`

	// Inventory is the scheduled full inventory (docs/inventory.md); its schedule defaults to the
	// sync window's.
	Inventory inventory.Config `yaml:"inventory"`
}

// NATS is where events come from and outcomes go.
type NATS struct {
	// URL of the NATS servers (comma-separated); empty starts the embedded server.
	URL string `yaml:"url"`
	// Listen is the embedded server's client address; default 127.0.0.1:4222.
	Listen string `yaml:"listen"`
	// StoreDir is the embedded server's JetStream folder; default ./data/nats beside the config.
	StoreDir string `yaml:"storeDir"`
	// SyncInterval is "always" (default: fsync every write) or a duration to opt out.
	SyncInterval string `yaml:"syncInterval"`
	// Credentials is a NATS .creds file; User/Password or Token authenticate otherwise.
	Credentials string      `yaml:"credentials"`
	User        string      `yaml:"user"`
	Password    auth.Secret `yaml:"password"`
	Token       auth.Secret `yaml:"token"`
	// Partitions of the events stream, fixed at creation; default 32.
	Partitions int `yaml:"partitions"`
	// Replicas of every stream; default 1 (use 3 on a cluster).
	Replicas int `yaml:"replicas"`
	// Consumer prefixes the durable consumer names; default scimflow.
	Consumer string `yaml:"consumer"`
	// Retention of events (for replay), outcomes and dead letters, and the duplicate window.
	EventsMaxAge    time.Duration `yaml:"eventsMaxAge"`
	OutcomesMaxAge  time.Duration `yaml:"outcomesMaxAge"`
	DLQMaxAge       time.Duration `yaml:"dlqMaxAge"`
	DuplicateWindow time.Duration `yaml:"duplicateWindow"`
	// HistoryPerKey and HistoryMaxAge bound the provisioning log (IDM_HISTORY): the last outcomes
	// kept per key (default 50) and for how long (default 30 days).
	HistoryPerKey int           `yaml:"historyPerKey"`
	HistoryMaxAge time.Duration `yaml:"historyMaxAge"`
}

// Embedded reports whether the worker starts its own NATS server.
func (n NATS) Embedded() bool { return n.URL == "" }

// ClientURL is the URL clients connect to: URL, or the embedded server's listen address.
func (n NATS) ClientURL() string {
	if n.URL != "" {
		return n.URL
	}
	return "nats://" + n.Listen
}

// ClientOptions are the connection options of the nats section: credentials, user and password,
// or token.
func (n NATS) ClientOptions() []nats.Option {
	var opts []nats.Option
	switch {
	case n.Credentials != "":
		opts = append(opts, nats.UserCredentials(n.Credentials))
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password.Reveal()))
	case !n.Token.IsZero():
		opts = append(opts, nats.Token(n.Token.Reveal()))
	}
	return opts
}

// SyncEvery is the embedded server's flush interval: zero for "always".
func (n NATS) SyncEvery() time.Duration {
	d, _ := time.ParseDuration(n.SyncInterval)
	return d
}

// SyncWindow is when deferred work is retried (DESIGN.md §5).
type SyncWindow struct {
	// Schedule is a cron expression (5 fields) or a descriptor such as @every 15m or @hourly.
	// Default @every 15m.
	Schedule string `yaml:"schedule"`
	// MaxWindows is how many windows a failing event is retried in before it is dead-lettered.
	// Default 3.
	MaxWindows int `yaml:"maxWindows"`
	// ReferenceRetries is how often a change whose reference does not resolve yet is planned again
	// in process (without holding a worker slot) before it is deferred; default 8, 0 for none.
	ReferenceRetries int `yaml:"referenceRetries"`
	// ReferenceBackoff is the first wait between those attempts (it doubles, up to 5s); default
	// 250ms.
	ReferenceBackoff time.Duration `yaml:"referenceBackoff"`
}

// Parsed returns the window schedule.
func (s SyncWindow) Parsed() (cron.Schedule, error) {
	sch, err := cron.ParseStandard(s.Schedule)
	if err != nil {
		return nil, fmt.Errorf("syncWindow.schedule: %q: %w", s.Schedule, err)
	}
	return sch, nil
}

// Worker tunes the consume loop.
type Worker struct {
	// Name identifies this replica in outcomes; default the host name.
	Name string `yaml:"name"`
	// Lanes is how many events are processed at once; default 256.
	Lanes int `yaml:"lanes"`
	// AckWait before JetStream redelivers an unacknowledged event; default 30s.
	AckWait time.Duration `yaml:"ackWait"`
	// DrainTimeout bounds a graceful shutdown; default 30s.
	DrainTimeout time.Duration `yaml:"drainTimeout"`
	// Partitions this replica consumes; absent or empty means all.
	Partitions []int `yaml:"partitions"`
}

// HTTP serves health, status and metrics.
type HTTP struct {
	// Listen address; default 127.0.0.1:9090 when absent, and an explicit "" disables the server.
	Listen string `yaml:"listen"`
	// OperatorToken, when set, lets a caller that presents it (Authorization: Bearer) change what
	// the worker does through the HTTP API (the inventory schedule, an inventory run now); without
	// it the API is read-only. Usually ${ENV}.
	OperatorToken auth.Secret `yaml:"operatorToken"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is auto (default: console on a terminal, JSON otherwise), json or console.
	Format string `yaml:"format"`
}

// Options change how Load reads the file.
type Options struct {
	// LookupEnv reads the environment for ${NAME} references; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Load reads, validates and completes the configuration in file.
func Load(file string, opt Options) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(file, data, opt)
}

// Parse is Load for data already read; file names it in messages and anchors relative paths.
func Parse(file string, data []byte, opt Options) (*Config, error) {
	c, doc, err := decode(file, data, opt.LookupEnv)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, locate(doc, err)
	}
	return c, nil
}

// locate turns the errors of Validate, each starting with the dotted field it concerns
// ("target.auth.oauth2.tokenURL: required"), into problems with the file and line of that field.
func locate(doc *yamlschema.Document, err error) error {
	var msgs []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		msgs = append(msgs, e.Error())
	}
	walk(err)
	problems := make([]yamlschema.Problem, 0, len(msgs))
	for _, m := range msgs {
		field, rest, ok := strings.Cut(m, ": ")
		if !ok || strings.ContainsAny(field, " ,") {
			problems = append(problems, yamlschema.Problem{File: doc.File, Message: m})
			continue
		}
		p := doc.Problem(field, "%s", rest)
		if p.Line == 0 {
			// The field is absent: point at its nearest present parent.
			for f := field; p.Line == 0 && strings.Contains(f, "."); {
				f = f[:strings.LastIndex(f, ".")]
				p.Line = doc.Line(f)
			}
		}
		problems = append(problems, p)
	}
	return &yamlschema.Error{Problems: problems}
}

// DefaultFile is the configuration file `worker run` reads when --config is not given, and the
// one the command-line clients read when neither --config nor --nats is given and it exists.
const DefaultFile = "scimflow.yaml"

// Client is where a command-line client connects, and how (ClientConnection).
type Client struct {
	URL     string
	Options []nats.Option
	// File is the configuration file read, "" when none was.
	File string
	// Embedded is true when File leaves nats.url empty and no URL was given: the server is the
	// embedded one, which runs only inside `worker run`.
	Embedded bool
}

// ClientConnection decides where a command-line client connects, and how: url (its --nats) when
// given, else the nats section of the configuration file cfgFile (its --config) when given, else
// that of ./scimflow.yaml when neither is given and it exists, else nats.DefaultURL; with the
// section's options, and credentials from the file creds (its --creds) when given. name is the
// connection's name, as the server's monitoring shows it.
func ClientConnection(name, cfgFile, url, creds string) (Client, error) {
	c := Client{Options: []nats.Option{nats.Name(name)}}
	if cfgFile == "" && url == "" {
		if _, err := os.Stat(DefaultFile); err == nil {
			cfgFile = DefaultFile
		}
	}
	if cfgFile != "" {
		n, err := LoadNATS(cfgFile, Options{})
		if err != nil {
			return Client{}, err
		}
		c.File = cfgFile
		if url == "" {
			url, c.Embedded = n.ClientURL(), n.Embedded()
		}
		c.Options = append(c.Options, n.ClientOptions()...)
	}
	if creds != "" {
		c.Options = append(c.Options, nats.UserCredentials(creds))
	}
	c.URL = cmp.Or(url, nats.DefaultURL)
	return c, nil
}

// Connect connects; when the embedded server is not there to connect to, the error says where it
// runs.
func (c Client) Connect() (*nats.Conn, error) {
	nc, err := nats.Connect(c.URL, c.Options...)
	if err == nil {
		return nc, nil
	}
	if c.Embedded {
		return nil, fmt.Errorf("connect to NATS at %s: %w (%s has no nats.url, so NATS is the embedded server, which runs inside `worker run`: start it, or give --nats)", c.URL, err, c.File)
	}
	return nil, fmt.Errorf("connect to NATS at %s: %w", c.URL, err)
}

// LoadNATS reads only what a NATS client needs from a worker configuration: the publisher and the
// operator commands use it on machines that do not hold the target's secrets, so ${ENV}
// references outside the nats section may stay unset.
func LoadNATS(file string, opt Options) (NATS, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return NATS{}, fmt.Errorf("read config: %w", err)
	}
	lookup := opt.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var unset []string
	keep := func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		unset = append(unset, name)
		return "${" + name + "}", true
	}
	c, _, err := decode(file, data, keep)
	if err != nil {
		return NATS{}, err
	}
	for _, v := range []string{c.NATS.URL, c.NATS.User, c.NATS.Password.Reveal(), c.NATS.Token.Reveal(), c.NATS.Credentials} {
		for _, name := range unset {
			if strings.Contains(v, "${"+name+"}") {
				return NATS{}, fmt.Errorf("%s: nats: environment variable %s is not set", file, name)
			}
		}
	}
	return c.NATS, nil
}

func decode(file string, data []byte, lookup func(string) (string, bool)) (*Config, *yamlschema.Document, error) {
	doc, err := yamlschema.Parse(file, data, SchemaName, yamlschema.Options{ExpandEnv: true, LookupEnv: lookup})
	if err != nil {
		return nil, nil, err
	}
	var c Config
	if err := doc.Decode(&c); err != nil {
		return nil, nil, err
	}
	c.File = file
	// Absent and explicitly empty or zero differ for these two fields.
	if doc.Line("http.listen") == 0 {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if doc.Line("syncWindow.referenceRetries") != 0 && c.SyncWindow.ReferenceRetries == 0 {
		c.SyncWindow.ReferenceRetries = pipeline.NoReferenceRetries
	}
	// deletionGuard: an absent limit is the default, an explicit 0 switches it off.
	if doc.Line("deletionGuard.maxDeletes") != 0 && c.DeletionGuard.MaxDeletes == 0 {
		c.DeletionGuard.MaxDeletes = guard.NoLimit
	}
	if doc.Line("deletionGuard.maxPercent") != 0 && c.DeletionGuard.MaxPercent == 0 {
		c.DeletionGuard.MaxPercent = guard.NoLimit
	}
	if doc.Line("inventory.minRatio") != 0 && c.Inventory.MinRatio == 0 {
		c.Inventory.MinRatio = inventory.NoMinRatio
	}
	c.Inventory.ScratchDir = filepathAbs(file, c.Inventory.ScratchDir)
	c.applyDefaults()
	return &c, doc, nil
}

func (c *Config) applyDefaults() {
	dir := filepath.Dir(c.File)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.NATS.Listen = cmp.Or(c.NATS.Listen, DefaultNATSListen)
	c.NATS.StoreDir = abs(cmp.Or(c.NATS.StoreDir, "data/nats"))
	c.NATS.SyncInterval = cmp.Or(c.NATS.SyncInterval, "always")
	c.NATS.Credentials = abs(c.NATS.Credentials)
	c.NATS.Partitions = cmp.Or(c.NATS.Partitions, events.DefaultPartitions)
	c.NATS.Replicas = cmp.Or(c.NATS.Replicas, 1)
	c.NATS.Consumer = cmp.Or(c.NATS.Consumer, events.DefaultConsumerName)
	c.Model = abs(c.Model)
	c.Target.TLS.CAFile = abs(c.Target.TLS.CAFile)
	c.Target.TLS.CertFile = abs(c.Target.TLS.CertFile)
	c.Target.TLS.KeyFile = abs(c.Target.TLS.KeyFile)
	c.SyncWindow.Schedule = cmp.Or(c.SyncWindow.Schedule, DefaultSchedule)
	c.SyncWindow.MaxWindows = cmp.Or(c.SyncWindow.MaxWindows, pipeline.DefaultMaxWindows)
	c.SyncWindow.ReferenceRetries = cmp.Or(c.SyncWindow.ReferenceRetries, pipeline.DefaultReferenceRetries)
	c.SyncWindow.ReferenceBackoff = cmp.Or(c.SyncWindow.ReferenceBackoff, pipeline.DefaultReferenceBackoff)
	if c.Worker.Name == "" {
		c.Worker.Name, _ = os.Hostname()
	}
	c.DeletionGuard.MaxDeletes = cmp.Or(c.DeletionGuard.MaxDeletes, guard.DefaultMaxDeletes)
	c.DeletionGuard.MaxPercent = cmp.Or(c.DeletionGuard.MaxPercent, guard.DefaultMaxPercent)
	c.Worker.Lanes = cmp.Or(c.Worker.Lanes, events.DefaultLanes)
	c.Worker.AckWait = cmp.Or(c.Worker.AckWait, events.DefaultAckWait)
	c.Worker.DrainTimeout = cmp.Or(c.Worker.DrainTimeout, events.DefaultDrainTimeout)
	if len(c.Worker.Partitions) == 0 {
		c.Worker.Partitions = nil // all of them
	}
	c.Inventory = c.Inventory.WithDefaults(c.SyncWindow.Schedule)
	c.Log.Level = cmp.Or(c.Log.Level, "info")
	c.Log.Format = cmp.Or(c.Log.Format, "auto")
}

// Validate checks what the schema cannot, naming each field.
func (c *Config) Validate() error {
	var errs []error
	if c.NATS.Embedded() {
		if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
			errs = append(errs, fmt.Errorf("nats.listen: %q: %w", c.NATS.Listen, err))
		}
	}
	if c.NATS.SyncInterval != "always" {
		if d, err := time.ParseDuration(c.NATS.SyncInterval); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("nats.syncInterval: %q is neither \"always\" nor a positive duration", c.NATS.SyncInterval))
		}
	}
	if c.Model == "" {
		errs = append(errs, errors.New("model: the path of the data model file is required"))
	} else if _, err := os.Stat(c.Model); err != nil {
		errs = append(errs, fmt.Errorf("model: %w", err))
	}
	if _, err := c.SyncWindow.Parsed(); err != nil {
		errs = append(errs, err)
	}
	for i, p := range c.Worker.Partitions {
		if p < 0 || p >= c.NATS.Partitions {
			errs = append(errs, fmt.Errorf("worker.partitions[%d]: %d is not a partition of 0..%d", i, p, c.NATS.Partitions-1))
		}
	}
	if err := c.Target.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.DeletionGuard.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Inventory.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// filepathAbs resolves a path relative to the configuration file's folder.
func filepathAbs(file, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(file), p)
}
