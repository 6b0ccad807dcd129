package inventory

import "time"

// Job statuses.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"     // the previous snapshot stays in force; the next window tries again
	StatusSuspect   = "suspect"    // read far fewer objects than the snapshot held: nothing deleted reported, snapshot kept
	StatusBaseline  = "baseline"   // the first run (or the first after the inventoried objects changed): recorded, nothing reported
	StatusLeaseLost = "lease_lost" // another replica took the job over; this run wrote nothing more
)

// Job is the record of one inventory run, as `worker inventory --status` and /status show it.
type Job struct {
	Run        uint64    `json:"run"`
	Worker     string    `json:"worker,omitempty"`
	Trigger    string    `json:"trigger"` // schedule, once or request
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"startedAt"`
	EndedAt    time.Time `json:"endedAt,omitzero"`
	DurationMs int64     `json:"durationMs"`
	Pages      int       `json:"pages"`
	Rereads    int       `json:"rereads"`
	// Objects counts the objects read, by data-model object.
	Objects map[string]int `json:"objects"`
	// Changes counts created, updated and deleted objects against the previous snapshot.
	Changes map[string]int `json:"changes"`
	// Drift counts the changes by class: external-change, unmanaged, missing, ours.
	Drift map[string]int `json:"drift"`
	// Published is how many drift events went out; Reverted how many reconcile events.
	Published int       `json:"published"`
	Reverted  int       `json:"reverted"`
	Errors    []string  `json:"errors,omitempty"`
	Suspect   string    `json:"suspect,omitempty"`
	Snapshot  string    `json:"snapshot,omitempty"`
	Schedule  string    `json:"schedule,omitempty"`
	NextRun   time.Time `json:"nextRun,omitzero"`
	Token     uint64    `json:"leaseToken,omitempty"`
}

// total is the number of objects read.
func (j *Job) total() int {
	n := 0
	for _, c := range j.Objects {
		n += c
	}
	return n
}
