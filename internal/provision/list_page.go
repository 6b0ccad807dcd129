package provision

// ListPage is one page of a SCIM ListResponse (RFC 7644 §3.4.2).
type ListPage struct {
	TotalResults int
	StartIndex   int
	// ItemsPerPage is as the target reported it, or len(Resources) when it sent none.
	ItemsPerPage int
	Resources    []map[string]any
}

// Next returns the startIndex of the following page and whether there is one. A page that came
// back empty ends the listing even when totalResults promises more, so a target that
// miscounts cannot make the caller loop forever.
func (p *ListPage) Next() (int, bool) {
	if len(p.Resources) == 0 {
		return 0, false
	}
	next := max(p.StartIndex, 1) + len(p.Resources)
	return next, next <= p.TotalResults
}
