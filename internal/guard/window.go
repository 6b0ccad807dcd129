package guard

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule says when the next sync window starts (pipeline.Schedule, robfig/cron schedules).
type Schedule interface {
	Next(time.Time) time.Time
}

// Period is implemented by schedules of fixed-length windows.
type Period interface {
	Period() time.Duration
}

// WindowOf names the sync window of s that holds t, the same for every t in that window and on
// every replica: for a schedule of fixed-length windows (@every 15m, pipeline.Every) the start of
// the window, the windows aligned on the Unix epoch (15m gives :00, :15, :30, :45); for a
// cron schedule the start of the next window (the window's end).
func WindowOf(s Schedule, t time.Time) time.Time {
	var d time.Duration
	switch x := s.(type) {
	case cron.ConstantDelaySchedule:
		d = x.Delay
	case *cron.ConstantDelaySchedule:
		d = x.Delay
	case Period:
		d = x.Period()
	}
	if d > 0 {
		n := t.UnixNano()
		return time.Unix(0, n-n%int64(d)).UTC()
	}
	return s.Next(t).UTC()
}
