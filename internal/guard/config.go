package guard

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/scimflow/scimflow/internal/reconcile"
)

// Config is the deletionGuard section of the worker configuration. The zero value is the
// documented default: the guard is on, with DefaultMaxDeletes and DefaultMaxPercent.
type Config struct {
	// MaxDeletes is how many deletes and disables, of every object type together, are sent per sync
	// window; the next ones are held. Zero means DefaultMaxDeletes; NoLimit (negative) means no count
	// limit.
	MaxDeletes int `yaml:"maxDeletes"`
	// MaxPercent is the share of the objects of one type the target holds (counted once per window)
	// that may be deleted or disabled per sync window, in percent; at least one per window is always
	// allowed. Zero means DefaultMaxPercent; NoLimit (negative) means no percent limit.
	MaxPercent float64 `yaml:"maxPercent"`
	// Protected lists key patterns of objects never deleted or disabled: such a change is rejected
	// at once.
	Protected []Pattern `yaml:"protected"`
}

// Defaults of Config (and of the deletionGuard section of the worker configuration).
const (
	DefaultMaxDeletes = 100
	DefaultMaxPercent = 10.0
	// NoLimit switches a limit off (the configuration's explicit 0).
	NoLimit = -1
)

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.MaxDeletes == 0 {
		c.MaxDeletes = DefaultMaxDeletes
	}
	if c.MaxPercent == 0 {
		c.MaxPercent = DefaultMaxPercent
	}
	return c
}

// countLimit is the count limit, 0 for none.
func (c Config) countLimit() int { return max(c.MaxDeletes, 0) }

// percentLimit is the percent limit, 0 for none.
func (c Config) percentLimit() float64 { return max(c.MaxPercent, 0) }

// Validate checks the section, naming each field (deletionGuard.protected[1].pattern: ...).
func (c Config) Validate() error {
	var errs []error
	if math.IsNaN(c.MaxPercent) || c.MaxPercent > 100 {
		errs = append(errs, fmt.Errorf("deletionGuard.maxPercent: %v is not a percentage of 0..100", c.MaxPercent))
	}
	for i, p := range c.Protected {
		field := fmt.Sprintf("deletionGuard.protected[%d]", i)
		if strings.TrimSpace(p.Object) == "" {
			errs = append(errs, fmt.Errorf("%s.object: required (a data-model object such as User)", field))
		}
		if strings.TrimSpace(p.Property) == "" {
			errs = append(errs, fmt.Errorf("%s.property: required (a key property such as userName)", field))
		}
		if p.Pattern == "" {
			errs = append(errs, fmt.Errorf("%s.pattern: required (a glob such as breakglass-*)", field))
		}
	}
	return errors.Join(errs...)
}

// CheckModel checks that each protected pattern names an object of the data model and one of its
// key properties (patterns match the key events carry): a misspelt pattern would otherwise
// protect nothing, silently.
func (c Config) CheckModel(m *reconcile.Model) error {
	var errs []error
	for i, p := range c.Protected {
		field := fmt.Sprintf("deletionGuard.protected[%d]", i)
		obj, ok := m.Object(p.Object)
		if !ok {
			var names []string
			for _, o := range m.Objects() {
				names = append(names, o.Name())
			}
			errs = append(errs, fmt.Errorf("%s.object: %q is not an object of the data model %s (objects: %s)",
				field, p.Object, m.Source(), strings.Join(names, ", ")))
			continue
		}
		keys := obj.KeyNames()
		if !slices.Contains(keys, p.Property) {
			errs = append(errs, fmt.Errorf("%s.property: %q is not a key property of %s (keys: %s)",
				field, p.Property, p.Object, strings.Join(keys, ", ")))
		}
	}
	return errors.Join(errs...)
}
