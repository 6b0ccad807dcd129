// Package guard is the deletion guard (DESIGN.md §5, docs/deletion-guard.md): it counts the
// deletes and disables (active: false) the worker sends per sync window and holds those beyond a
// count (maxDeletes) or a share of the objects the target holds (maxPercent, per object type)
// until an operator approves them; objects whose key matches a protected pattern (break-glass
// admins) are never deleted or disabled.
//
// The pipeline asks a Guard before it sends a plan that deletes or disables (Check); the consume
// loop parks what is held. The counts live in a Tally: in memory for one worker, or shared by
// every replica in JetStream KV.
package guard
