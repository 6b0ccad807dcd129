package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Plan is what one identity change turns into: the requests to send, in order, and why.
type Plan struct {
	Object    string
	Resource  string
	Operation Operation
	ObjectID  string    // resolved id; "" when creating or when the object is absent
	Requests  []Request // in order; empty when nothing needs sending
	Skipped   string    // why nothing is sent (delete of an absent object, already in the desired state, ...)
	Notes     []string  // e.g. "object exists: Create converges it with an update"
	// KeyResource and Key are how the object is looked up by its key (Resolve Object ID): after a
	// create, the pipeline remembers Key → the new id.
	KeyResource string
	Key         []Match
	// Rekey is set when the change gives the object a new key (a rename): the pipeline moves its
	// key → id cache entry from Rekey.Old to Rekey.New once the requests succeeded. Set even when
	// nothing needs sending (the object may already carry the new key, e.g. on a redelivery).
	Rekey *Rekey
	// Unresolved lists the reference values left out because their objects don't exist yet
	// (Change.DeferUnresolved), in the order they were met; FollowUp returns the change that sets
	// them.
	Unresolved []UnresolvedReference
	// Absent and Current say why nothing is sent when the target already holds what the change
	// asks for: Absent, a delete of an object that is not there; Current, the object as the target
	// answered its read (a reconciled update that would change nothing). A redelivered event that finds its own
	// earlier run's effect records it as applied (pipeline), since that run may have stopped
	// before its applied record was stored.
	Absent  bool
	Current []byte

	followUp *Change
}

// UnresolvedReference is a reference value a plan left out (Change.DeferUnresolved).
type UnresolvedReference struct {
	Property string  // the data-model property, e.g. members[].value
	Resource string  // where it was looked up, e.g. Users
	Match    []Match // what was looked for
	Value    string  // the event's value, e.g. the member's userName
}

func (u UnresolvedReference) String() string {
	return fmt.Sprintf("%s %q (no %s where %s)", u.Property, u.Value, u.Resource, describeMatch(u.Match))
}

// Rekey says that a change sets key properties of the object to new values (an Update of
// userName, docs/datamodel.md §3): afterwards Old no longer finds the object, New does.
type Rekey struct {
	Resource string  // where keys are looked up: the keys' referenceObject (the object's resource)
	Old      []Match // the event's key, as Resolve Object ID looked it up
	New      []Match // the key afterwards: the renamed properties' new values, the others unchanged
}

// Request is one HTTP request of a plan.
type Request struct {
	Method  string   // POST, PATCH, PUT, DELETE
	Path    string   // relative to the entity base: "Users" or "Users/<id>" (id path-escaped)
	Body    []byte   // JSON; nil for DELETE
	Sources []Source // which rule produced each part of the body
}

// Source names the rule behind one part of a request body.
type Source struct {
	Pointer string // JSON pointer into Body; "" for the whole body
	Rule    string // e.g. `task mapping "name.givenName" (modify, Update)`, `template UpdateRequest`
}

// Render writes what `worker plan` prints: each request (method, path, indented body) and the rule
// behind each part of its body, then the notes.
func (p *Plan) Render(w io.Writer) error { return p.RenderAt(w, "") }

// RenderAt is Render with each request's path joined to base (the target's entity base URL), so
// that the output shows the exact URL each request goes to.
func (p *Plan) RenderAt(w io.Writer, base string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s (resource %s)", p.Operation, p.Object, p.Resource)
	if p.ObjectID != "" {
		fmt.Fprintf(&b, ", object id %s", p.ObjectID)
	}
	b.WriteString("\n")
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if len(p.Requests) == 0 {
		fmt.Fprintf(&b, "no request: %s\n", p.Skipped)
	}
	for i, r := range p.Requests {
		target := r.Path
		if base != "" {
			target = strings.TrimSuffix(base, "/") + "/" + r.Path
		}
		fmt.Fprintf(&b, "\nrequest %d: %s %s\n", i+1, r.Method, target)
		if r.Body == nil {
			continue
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, r.Body, "", "  "); err != nil {
			return fmt.Errorf("render request %d: %w", i+1, err)
		}
		b.Write(pretty.Bytes())
		b.WriteString("\n")
		if len(r.Sources) > 0 {
			b.WriteString("rules:\n")
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			for _, s := range r.Sources {
				ptr := s.Pointer
				if ptr == "" {
					ptr = "(body)"
				}
				fmt.Fprintf(tw, "  %s\t%s\n", ptr, strings.ReplaceAll(s.Rule, "\t", " "))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}
