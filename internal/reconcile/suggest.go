package reconcile

import (
	"math"
	"strconv"
	"strings"
)

// suggestion is didYouMean as a message part: `: did you mean "title"?`, or "".
func suggestion(name string, candidates []string) string {
	if s := didYouMean(name, candidates); s != "" {
		return ": " + s
	}
	return ""
}

// didYouMean returns `did you mean "title"?` for the candidates nearest to name, or "" when none
// is near. See nearest.
func didYouMean(name string, candidates []string) string {
	best := nearest(name, candidates)
	if len(best) == 0 {
		return ""
	}
	quoted := make([]string, len(best))
	for i, b := range best {
		quoted[i] = strconv.Quote(b)
	}
	list := quoted[0]
	if n := len(quoted); n > 1 {
		list = strings.Join(quoted[:n-1], ", ") + " or " + quoted[n-1]
	}
	return "did you mean " + list + "?"
}

// nearest returns the candidates closest to name (at most three, in the candidates' order), or
// none when nothing is close. Names are compared case-insensitively and without "[]" (an event
// writing "Title" or "emails.value" means "title" or "emails[].value"), by optimal string alignment
// distance: insertions, deletions, substitutions and transpositions of adjacent characters
// ("titel"). A candidate also matches by its attribute without schema URN and by its last
// attribute name, so "department" finds "urn:...:User:department" and "givenName"
// "name.givenName". Close means at most one edit per four characters of name, and at least one.
func nearest(name string, candidates []string) []string {
	n := []rune(normalizeName(name))
	limit := max(1, len(n)/4)
	bestDist := limit + 1
	var best []string
	for _, c := range candidates {
		d := math.MaxInt
		for _, form := range nameForms(c) {
			d = min(d, osaDistance(n, []rune(form)))
		}
		switch {
		case d < bestDist:
			bestDist, best = d, []string{c}
		case d == bestDist && d <= limit && len(best) < 3:
			best = append(best, c)
		}
	}
	return best
}

func normalizeName(s string) string { return strings.ReplaceAll(strings.ToLower(s), "[]", "") }

// nameForms are the spellings a candidate is matched by: the whole name, the attribute path after
// a schema URN, and the last attribute name.
func nameForms(c string) []string {
	full := normalizeName(c)
	forms := []string{full}
	attr := full
	if strings.HasPrefix(full, "urn:") {
		attr = full[strings.LastIndexByte(full, ':')+1:]
		forms = append(forms, attr)
	}
	if i := strings.LastIndexByte(attr, '.'); i >= 0 {
		forms = append(forms, attr[i+1:])
	}
	return forms
}

// osaDistance is the optimal string alignment (restricted Damerau-Levenshtein) distance.
func osaDistance(a, b []rune) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
