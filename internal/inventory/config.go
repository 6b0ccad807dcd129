package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/robfig/cron/v3"
)

// Defaults of Config (and of the inventory section of the worker configuration).
const (
	DefaultPageSize    = 1000 // CyberArk's maximum
	DefaultConcurrency = 4
	DefaultMinRatio    = 0.5
	DefaultKeepJobs    = 20
	DefaultLeaseTTL    = 30 * time.Second
	DefaultSortBuffer  = 16 << 20
	OnDriftReport      = "report"
	OnDriftRevert      = "revert"
)

// Config configures the inventory. The zero value of every field is its default.
type Config struct {
	// Schedule is when the job runs: a cron expression (5 fields) or a descriptor such as
	// @every 1h. Default: the sync window's schedule (once per window). A schedule set at run time
	// (worker inventory schedule) overrides it and persists.
	Schedule string `yaml:"schedule"`
	// PageSize is the count asked per page, at most the target's maximum; default 1000.
	PageSize int `yaml:"pageSize"`
	// Concurrency is how many pages of one resource are read at once; default 4. They go through
	// the connector's limiter and breaker like every other request.
	Concurrency int `yaml:"concurrency"`
	// MinRatio: a run that reads fewer than this fraction of the objects the snapshot in force
	// holds (for any object) is suspect: it reports no deleted or missing drift and keeps the
	// snapshot. Default 0.5; 0 switches the check off (NoMinRatio in Go).
	MinRatio float64 `yaml:"minRatio"`
	// OnDrift says, per data-model object, what to do with drift: report (default) or revert
	// (publish a reconcile event for the key, processed like any event).
	OnDrift map[string]string `yaml:"onDrift"`
	// Objects are the data-model objects to inventory; default every object with a key, one per
	// resource.
	Objects []string `yaml:"objects"`
	// KeepJobs is how many job records are kept; default 20.
	KeepJobs int `yaml:"keepJobs"`
	// ScratchDir holds a run's sort files (deleted when it ends); default the system's temporary
	// folder.
	ScratchDir string `yaml:"scratchDir"`
	// LeaseTTL is how long the runner's lease lasts without renewal; default 30s.
	LeaseTTL time.Duration `yaml:"leaseTTL"`
	// SortBuffer bounds the memory of a run's sort, in bytes; default 16 MiB.
	SortBuffer int `yaml:"-"`
}

// NoMinRatio switches the suspect-run check off.
const NoMinRatio = -1

// WithDefaults returns c with every zero field set; fallbackSchedule is the sync window's.
func (c Config) WithDefaults(fallbackSchedule string) Config {
	c.Schedule = cmp.Or(c.Schedule, fallbackSchedule)
	c.PageSize = cmp.Or(c.PageSize, DefaultPageSize)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.MinRatio = cmp.Or(c.MinRatio, DefaultMinRatio)
	c.KeepJobs = cmp.Or(c.KeepJobs, DefaultKeepJobs)
	c.ScratchDir = cmp.Or(c.ScratchDir, os.TempDir())
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.SortBuffer = cmp.Or(c.SortBuffer, DefaultSortBuffer)
	return c
}

// Validate names each invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Schedule != "" {
		if _, err := ParseSchedule(c.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("inventory.schedule: %w", err))
		}
	}
	if c.PageSize < 0 || c.PageSize == 1 {
		errs = append(errs, fmt.Errorf("inventory.pageSize: %d: pages overlap by one object, so at least 2", c.PageSize))
	}
	if c.Concurrency < 0 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("inventory.concurrency: %d is out of range 1..64", c.Concurrency))
	}
	if c.MinRatio > 1 || (c.MinRatio < 0 && c.MinRatio != NoMinRatio) {
		errs = append(errs, fmt.Errorf("inventory.minRatio: %v is out of range 0..1", c.MinRatio))
	}
	for obj, v := range c.OnDrift {
		if v != OnDriftReport && v != OnDriftRevert {
			errs = append(errs, fmt.Errorf("inventory.onDrift.%s: %q is neither report nor revert", obj, v))
		}
	}
	if c.LeaseTTL != 0 && c.LeaseTTL < 3*time.Second {
		errs = append(errs, fmt.Errorf("inventory.leaseTTL: %s is shorter than 3s", c.LeaseTTL))
	}
	if c.KeepJobs < 0 {
		errs = append(errs, fmt.Errorf("inventory.keepJobs: %d is negative", c.KeepJobs))
	}
	return errors.Join(errs...)
}

// ParseSchedule parses a cron expression (5 fields) or a descriptor (@every 1h, @daily).
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return s, nil
}

// onDrift is the policy of object.
func (c Config) onDrift(object string) string {
	return cmp.Or(c.OnDrift[object], OnDriftReport)
}

// objectsEqual: two runs inventoried the same objects in the same order.
func objectsEqual(a []ShapeInfo, b []*shape) bool {
	return len(a) == len(b) && !slices.ContainsFunc(b, func(s *shape) bool {
		return int(s.index) >= len(a) || a[s.index].Object != s.object
	})
}
