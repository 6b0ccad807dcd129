// Package inventory reads the whole target back, page by page, and reports drift (DESIGN.md §6,
// docs/inventory.md).
//
// A run pages through every object of the data model (Users, Groups with members, and what else
// the model names) with bounded concurrency, deduplicating by id and re-reading a page that
// shifted under it. Each object becomes an Entry: its id, its key and one hash per managed
// attribute. Entries are sorted on local scratch disk (an external merge sort, so memory stays
// flat whatever the directory's size) and merged with the previous snapshot, read as a stream from
// a JetStream object store; the merge yields created, updated and deleted objects, and writes the
// new snapshot as it goes. Each change is classified against what the worker itself last applied
// to the object (AppliedLog): our own writes are never drift. Drift is published as CloudEvents on
// idm.inventory.<object>.<change>; a run that completes switches the current snapshot atomically,
// a run that fails leaves the previous one in force.
//
// One replica runs the job at a time: Scheduler holds a KV lease with a fencing token, and a
// runner that lost it writes nothing more.
package inventory
