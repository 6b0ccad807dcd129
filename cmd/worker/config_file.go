package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/scimflow/scimflow/internal/config"
)

// defaultConfigFile is what --config names when it is not given.
const defaultConfigFile = config.DefaultFile

// exampleConfig is the configuration the messages suggest.
const exampleConfig = "deploy/examples/config.yaml"

// loadConfig loads the configuration file --config names. A file that does not exist gets a
// message naming it, saying whether it was the default, and suggesting --config.
func loadConfig(fs *flag.FlagSet, file string) (*config.Config, error) {
	cfg, err := config.Load(file, config.Options{})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return cfg, err
	}
	abs, aerr := filepath.Abs(file)
	if aerr != nil {
		abs = file
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	if explicit {
		return nil, fmt.Errorf("configuration file %s not found (%s): check the path given to --config, e.g. --config %s", file, abs, exampleConfig)
	}
	return nil, fmt.Errorf("no configuration file: %s not found in the current folder (%s) and --config was not given: pass --config FILE, e.g. --config %s", file, filepath.Dir(abs), exampleConfig)
}
