package provision

import (
	"io"

	"github.com/rs/zerolog"
)

// testLogger logs everything, debug included, to w.
func testLogger(w io.Writer) zerolog.Logger { return zerolog.New(w).Level(zerolog.DebugLevel) }
