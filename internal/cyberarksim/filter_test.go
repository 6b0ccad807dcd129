package cyberarksim

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // canonical form; empty when an error is expected
		err  string // substring of the error
	}{
		{in: `userName eq "bjensen"`, want: `userName eq "bjensen"`},
		{in: `userName EQ "bjensen"`, want: `userName eq "bjensen"`},
		{in: `  name.givenName   sw   "Bar"  `, want: `name.givenName sw "Bar"`},
		{in: `emails.value co "@example.com" AND active eq true`, want: `emails.value co "@example.com" and active eq true`},
		{in: `a eq "x" and b eq "y" aNd c eq 3`, want: `a eq "x" and b eq "y" and c eq 3`},
		{in: `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915"`, want: `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915"`},
		{in: `displayName eq "say \"hi\" \\ \u00e9 \ud83d\ude00"`, want: `displayName eq "say \"hi\" \\ é 😀"`},
		{in: `displayName eq "tab\there"`, want: `displayName eq "tab\there"`},
		{in: `x ew "a\/b"`, want: `x ew "a/b"`},
		{in: `members.$ref eq "x"`, want: `members.$ref eq "x"`},
		{in: `n eq -1.5e3`, want: `n eq -1.5e3`},
		{in: `n eq 0`, want: `n eq 0`},
		{in: `not eq "attribute named not"`, want: `not eq "attribute named not"`},

		{in: ``, err: "empty"},
		{in: `   `, err: "empty"},
		{in: `userName eq 'bjensen'`, err: "single quotes"},
		{in: `userName eq bjensen`, err: "JSON string"},
		{in: `userName eq "a" or userName eq "b"`, err: `"or" is not supported`},
		{in: `not (userName eq "a")`, err: `"not" is not supported`},
		{in: `(userName eq "a")`, err: "parentheses"},
		{in: `userName eq "a" and (x eq "b")`, err: "parentheses"},
		{in: `title pr`, err: `"pr" is not supported`},
		{in: `meta.lastModified gt "2011-05-13T04:42:34Z"`, err: `"gt" is not supported`},
		{in: `userName ne "a"`, err: `"ne" is not supported`},
		{in: `userName like "a"`, err: "unknown operator"},
		{in: `emails[type eq "work"]`, err: "brackets"},
		{in: `userName eq null`, err: "null"},
		{in: `userName eq "unterminated`, err: "unterminated"},
		{in: `userName eq "bad \q escape"`, err: "invalid escape"},
		{in: `userName eq "bad \u12 escape"`, err: `\u escape`},
		{in: "userName eq \"raw\ncontrol\"", err: "control character"},
		{in: `userName eq "a"and b eq "c"`, err: "space after the value"},
		{in: `userName eq "a" and`, err: `after "and"`},
		{in: `userName eq "a" and `, err: `after "and"`},
		{in: `userName eq "a" b eq "c"`, err: `expected "and"`},
		{in: `userName eq`, err: "expected a value"},
		{in: `userName`, err: "expected an operator"},
		{in: `eq "a"`, err: "expected an operator"},
		{in: `1abc eq "a"`, err: "invalid attribute name"},
		{in: `user@name eq "a"`, err: "invalid attribute name"},
		{in: `name.given.name eq "a"`, err: "invalid sub-attribute"},
		{in: `urn:bad eq "a"`, err: "invalid schema URN"},
		{in: `urn:a:b: eq "a"`, err: "attribute name missing"},
		{in: `n eq 01`, err: "not a JSON number"},
		{in: `n eq 1.`, err: "not a JSON number"},
		{in: `n eq TRUE`, err: "JSON string"},
		{in: `userName eq "a"]`, err: `found "]"`},
		{in: `userName eq "a" ]`, err: "unbalanced"},
		{in: "userName eq \"\xff\"", err: "UTF-8"},
		{in: strings.Repeat(`a eq "x" and `, 70) + `a eq "x"`, err: "more than 64"},
		{in: `a eq "` + strings.Repeat("x", maxFilterLength) + `"`, err: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(tt.in)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.Contains(t, err.Error(), "offset", "errors say where")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, f.String())
			again, err := ParseFilter(f.String())
			require.NoError(t, err)
			assert.Equal(t, f, again, "the canonical form parses to the same filter")
		})
	}
}

func TestCompileFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in  string
		err string
	}{
		{in: `userName eq "a"`},
		{in: `USERNAME Eq "a"`},
		{in: `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"`},
		{in: `emails eq "a@example.com"`},
		{in: `meta.created eq "2024-01-02T03:04:05Z"`},
		{in: `urn:scim:schemas:extension:custom:2.0:anything sw "x"`},
		{in: `urn:scim:schemas:extension:custom:2.0:level eq 3`},
		{in: `active eq false`},
		{in: `id eq "x" and externalId eq "y"`},
		{in: `title eq "x"`},
		{in: `foo eq "x"`, err: `unknown attribute "foo"`},
		{in: `name.first eq "x"`, err: `unknown sub-attribute "first"`},
		{in: `userName.x eq "x"`, err: "has no sub-attributes"},
		{in: `urn:example:unknown:attr eq "x"`, err: "unknown schema"},
		{in: `password eq "x"`, err: "cannot be used in a filter"},
		{in: `name eq "x"`, err: "through a sub-attribute"},
		{in: `active eq "true"`, err: "boolean"},
		{in: `active sw true`, err: "boolean"},
		{in: `userName eq 3`, err: "JSON string"},
		{in: `meta.created eq "yesterday"`, err: "RFC 3339"},
		{in: `meta.created sw "2024"`, err: "dateTime"},
		{in: `urn:scim:schemas:extension:custom:2.0:anything co 3`, err: "needs a string"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(tt.in)
			require.NoError(t, err)
			_, err = compileFilter(userType, f)
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

// filterOracle recognises exactly the filter syntax ParseFilter accepts, written independently
// as one regular expression (the language has no nesting).
var filterOracle = func() *regexp.Regexp {
	ws := `[ \t\n\r]`
	attr := `[A-Za-z][A-Za-z0-9_-]*`
	path := `(?:[uU][rR][nN]:[A-Za-z0-9._+%-]+(?::[A-Za-z0-9._+%-]+)*:)?` + attr + `(?:\.(?:` + attr + `|\$ref))?`
	str := `"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"`
	num := `-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?`
	term := path + ws + `+(?i:eq|sw|co|ew)` + ws + `+(?:` + str + `|true|false|` + num + `)`
	return regexp.MustCompile(`^` + ws + `*` + term + `(?:` + ws + `+(?i:and)` + ws + `+` + term + `)*` + ws + `*$`)
}()

func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{
		`userName eq "bjensen"`, `name.familyName co "O'Malley"`, `userName sw "J"`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, `title pr`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`, `title pr and userType eq "Employee"`,
		`title pr or userType eq "Intern"`, `schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`,
		`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
		`userType ne "Employee" and not (emails co "example.com")`, `emails[type eq "work" and value co "@example.com"]`,
		`displayName eq "\u00e9\"\\"`, `a eq 1 AND b eq true and c eq -0.5E+3`, `a eq 'x'`, `a eq "x"]`,
		`not eq "x"`, `urn:a:b:c.d eq "x"`, "a eq \"\x00\"", `a  eq  "x"  and  b  eq  false  `,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		parsed, err := ParseFilter(in)
		if err != nil {
			if strings.Contains(err.Error(), "comparisons") || strings.Contains(err.Error(), "limit") {
				return
			}
			if utf8.ValidString(in) && filterOracle.MatchString(in) {
				t.Fatalf("rejected a valid filter %q: %v", in, err)
			}
			return
		}
		if !utf8.ValidString(in) || !filterOracle.MatchString(in) {
			t.Fatalf("accepted garbage %q as %q", in, parsed.String())
		}
		again, err := ParseFilter(parsed.String())
		if err != nil || again.String() != parsed.String() {
			t.Fatalf("canonical form %q of %q does not round-trip: %v", parsed.String(), in, err)
		}
		// Compiling and matching against any resource type never panics.
		for _, rt := range allResourceTypes {
			if cf, err := compileFilter(rt, parsed); err == nil {
				cf.matches(map[string]any{"userName": "x", "emails": []any{map[string]any{"value": "y"}}, customURN: map[string]any{"a": []any{1.0}}})
			}
		}
	})
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	ids := map[string]string{}
	for _, u := range []map[string]any{
		user("Barbara.Jensen@Example.com", map[string]any{"externalId": "EXT-1", "displayName": "Babs Jensen", "title": "Tour Guide",
			"name":        map[string]any{"givenName": "Barbara", "familyName": "Jensen"},
			"schemas":     []any{userURN, enterpriseURN, customURN},
			enterpriseURN: map[string]any{"department": "Tour Operations", "employeeNumber": "701984"},
			customURN:     map[string]any{"Clearance": "Secret", "Level": 3}}),
		user("jim.smith@example.org", map[string]any{"externalId": "ext-1", "displayName": "Jim Smith", "active": false,
			"name":   map[string]any{"givenName": "Jim", "familyName": "Smith"},
			"emails": []any{map[string]any{"value": "jim@home.example", "type": "home"}, map[string]any{"value": "jim.smith@example.org", "type": "work"}}}),
		user("zoe@example.com", map[string]any{"displayName": "Zoé Ünal", "name": map[string]any{"givenName": "Zoé", "familyName": "Ünal"}}),
	} {
		ids[u["userName"].(string)] = c.create(Users, u)
	}
	babs, jim, zoe := ids["Barbara.Jensen@Example.com"], ids["jim.smith@example.org"], ids["zoe@example.com"]

	tests := []struct {
		filter string
		want   []string
	}{
		{`userName eq "barbara.jensen@example.com"`, []string{babs}},
		{`USERNAME eq "BARBARA.JENSEN@EXAMPLE.COM"`, []string{babs}},
		{`userName sw "jim"`, []string{jim}},
		{`userName ew "@EXAMPLE.COM"`, []string{babs, zoe}},
		{`userName co "A.J"`, []string{babs}},
		{`userName co "."`, []string{babs, jim, zoe}},
		{`id eq "` + jim + `"`, []string{jim}},
		{`id eq "` + strings.ToUpper(jim) + `"`, nil},
		{`externalId eq "EXT-1"`, []string{babs}},
		{`externalId eq "ext-1"`, []string{jim}},
		{`displayName eq "babs jensen"`, []string{babs}},
		{`name.givenName sw "ZO"`, []string{zoe}},
		{`name.familyName eq "ünal"`, []string{zoe}},
		{`name.familyName eq "\u00dcnal"`, []string{zoe}},
		{`emails.value eq "jim@home.example"`, []string{jim}},
		{`emails eq "JIM@HOME.EXAMPLE"`, []string{jim}},
		{`emails.type eq "home"`, []string{jim}},
		{`active eq false`, []string{jim}},
		{`active eq true`, []string{babs, zoe}},
		{`title co "guide"`, []string{babs}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations"`, []string{babs}},
		{`urn:scim:schemas:extension:custom:2.0:clearance eq "secret"`, []string{babs}},
		{`urn:scim:schemas:extension:custom:2.0:Level eq 3`, []string{babs}},
		{`userName ew "example.com" and name.givenName eq "barbara"`, []string{babs}},
		{`userName ew "example.com" and active eq true and displayName sw "Z"`, []string{zoe}},
		{`userName eq "nobody"`, nil},
		{`userName eq "barbara.jensen@example.com" and active eq false`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			t.Parallel()
			r := c.do(http.MethodGet, "/scim/v2/Users?filter="+url.QueryEscape(tt.filter), nil)
			require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
			assert.Equal(t, []any{listResponseURN}, r.body["schemas"])
			assert.Equal(t, float64(len(tt.want)), r.body["totalResults"])
			var got []string
			for _, res := range r.body["Resources"].([]any) {
				got = append(got, res.(map[string]any)["id"].(string))
			}
			assert.Equal(t, tt.want, got, "matches in creation order")
		})
	}

	for _, bad := range []string{`userName eq 'x'`, `userName eq "a" or userName eq "b"`, `foo eq "x"`, `userName gt "a"`, `(userName eq "a")`, `active eq "yes"`, ``} {
		r := c.do(http.MethodGet, "/scim/v2/Users?filter="+url.QueryEscape(bad), nil)
		requireSCIMError(t, r, http.StatusBadRequest, scimInvalidFilter)
	}

	gid := c.create(Groups, group("Guides", babs, zoe))
	c.create(Groups, group("Others", jim))
	r := c.do(http.MethodGet, "/scim/v2/Groups?filter="+url.QueryEscape(`members.value eq "`+zoe+`"`), nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, float64(1), r.body["totalResults"])
	assert.Equal(t, gid, r.body["Resources"].([]any)[0].(map[string]any)["id"])
	r = c.do(http.MethodGet, "/scim/v2/Users?filter="+url.QueryEscape(`groups.value eq "`+gid+`"`), nil)
	assert.Equal(t, float64(2), r.body["totalResults"])
	r = c.do(http.MethodGet, "/scim/v2/Groups?filter="+url.QueryEscape(`displayName eq "guides"`), nil)
	assert.Equal(t, float64(1), r.body["totalResults"], "Group displayName is case-insensitive")
}
