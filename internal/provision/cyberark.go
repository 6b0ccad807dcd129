package provision

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/jsonx"
)

// CustomSchema is CyberArk's extension for custom attributes.
const CustomSchema = "urn:scim:schemas:extension:custom:2.0"

// CyberArk resource endpoints.
const (
	ResourceUsers                = "Users"
	ResourceGroups               = "Groups"
	ResourceContainers           = "Containers"
	ResourceContainerPermissions = "ContainerPermissions"
	ResourcePrivilegedData       = "PrivilegedData"
)

// ContainerPermissionID is the id of a safe member: "<safe>:<member>". Use ResourcePath to put it
// in a path; it escapes what needs escaping.
func ContainerPermissionID(safe, member string) string { return safe + ":" + member }

// SplitContainerPermissionID splits "<safe>:<member>" at the first ':' (safe names cannot
// contain one; member names, such as "domain:user", may).
func SplitContainerPermissionID(id string) (safe, member string, ok bool) {
	safe, member, ok = strings.Cut(id, ":")
	return safe, member, ok && safe != "" && member != ""
}

// Password generation: 24 characters drawn uniformly with crypto/rand from an alphabet without
// look-alikes, at least one of each class (about 140 bits).
const (
	passwordLength = 24
	pwUpper        = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	pwLower        = "abcdefghijkmnopqrstuvwxyz"
	pwDigit        = "23456789"
	pwSymbol       = "!#%+-.:=?@_~"
)

// GeneratePassword returns a strong random password for a created user.
func GeneratePassword() (string, error) {
	// One read of the system's random source seeds a ChaCha8 stream (a cryptographic generator)
	// for this password's picks, instead of a read per character.
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	r := mrand.New(mrand.NewChaCha8(seed))
	classes := []string{pwUpper, pwLower, pwDigit, pwSymbol}
	all := pwUpper + pwLower + pwDigit + pwSymbol
	out := make([]byte, passwordLength)
	for i := range out {
		set := all
		if i < len(classes) {
			set = classes[i]
		}
		out[i] = set[r.IntN(len(set))]
	}
	// Shuffle so the guaranteed classes are not always first.
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return string(out), nil
}

// prepared is a request body after the profile's adjustments.
type prepared struct {
	body []byte
	// secret is a generated password, redacted from any error detail the target echoes.
	secret auth.Secret
}

// prepareCyberArk applies the CyberArk profile to a request: PATCH refused on the PAM resources,
// a generated password on user creation, and the custom extension listed in schemas.
func prepareCyberArk(method, rel string, body []byte) (prepared, error) {
	p := prepared{body: body}
	first, rest, _ := strings.Cut(rel, "/")
	resource, _ := url.PathUnescape(first)
	if method == http.MethodPatch {
		for _, r := range []string{ResourceContainers, ResourceContainerPermissions, ResourcePrivilegedData} {
			if strings.EqualFold(resource, r) {
				return p, fmt.Errorf("CyberArk does not support PATCH on %s; send PUT with the full object (for safe members, the full rights list)", r)
			}
		}
	}
	if (method != http.MethodPost && method != http.MethodPut) || len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	createsUser := method == http.MethodPost && rest == "" && strings.EqualFold(resource, ResourceUsers)
	if top, ok := scanTop(body); ok && !(top.custom && top.schemasArray && !top.listed) {
		// The common bodies, without decoding them: the extension listed already (or not used),
		// and a user's create that names no password gets one as its first member.
		if !createsUser || top.password {
			return p, nil
		}
		pw, err := GeneratePassword()
		if err != nil {
			return p, err
		}
		members := bytes.TrimLeft(bytes.TrimLeft(body, " \t\r\n")[1:], " \t\r\n")
		out := make([]byte, 0, len(body)+len(pw)+16)
		out = append(out, `{"password":`...)
		out = jsonx.AppendString(out, pw, false)
		if members[0] != '}' {
			out = append(out, ',')
		}
		p.body, p.secret = append(out, members...), auth.Secret(pw)
		return p, nil
	} else if !ok && !json.Valid(body) {
		return p, nil // not JSON: the target will say what is wrong
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return p, nil // not a JSON object: the target will say what is wrong
	}
	changed := false
	if createsUser {
		if _, ok := obj["password"]; !ok {
			pw, err := GeneratePassword()
			if err != nil {
				return p, err
			}
			obj["password"], p.secret, changed = pw, auth.Secret(pw), true
		}
	}
	if _, ok := obj[CustomSchema]; ok {
		if schemas, ok := obj["schemas"].([]any); ok {
			listed := false
			for _, s := range schemas {
				if str, _ := s.(string); strings.EqualFold(str, CustomSchema) {
					listed = true
				}
			}
			if !listed {
				obj["schemas"], changed = append(schemas, CustomSchema), true
			}
		}
	}
	if !changed {
		return p, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return p, fmt.Errorf("encode request body: %w", err)
	}
	p.body = bytes.TrimRight(buf.Bytes(), "\n")
	return p, nil
}

// topMembers is what the CyberArk profile needs to know of a request body's members: whether it
// names a password and the custom extension, and whether its schemas (an array) list the
// extension.
type topMembers struct{ password, custom, schemasArray, listed bool }

// scanTop reads body's top-level members without decoding them. ok is false where body is not
// one JSON object read as encoding/json reads it into a map (a member name escaped or given twice,
// text after the object, not JSON): prepareCyberArk decodes it then.
func scanTop(body []byte) (topMembers, bool) {
	return jsonx.Read(body, func(d *jsontext.Decoder) (topMembers, bool) {
		var t topMembers
		schemas := false
		if !jsonx.Members(d, func(name []byte) bool {
			text, plain := jsonx.PlainName(name)
			if !plain {
				return false
			}
			switch string(text) {
			case "password":
				if t.password {
					return false
				}
				t.password = true
			case CustomSchema:
				if t.custom {
					return false
				}
				t.custom = true
			case "schemas":
				if schemas {
					return false
				}
				schemas = true
				if d.PeekKind() != '[' {
					return d.SkipValue() == nil
				}
				t.schemasArray = true
				return jsonx.Elements(d, func() bool {
					if d.PeekKind() != '"' {
						return d.SkipValue() == nil
					}
					tok, err := d.ReadToken()
					if err == nil && strings.EqualFold(tok.String(), CustomSchema) {
						t.listed = true
					}
					return err == nil
				})
			}
			return d.SkipValue() == nil
		}) {
			return t, false
		}
		_, err := d.ReadToken()
		return t, err == io.EOF
	})
}
