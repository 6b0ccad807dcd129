package auth

import (
	"encoding/json"
	"io"
	"net/http"
)

// decodeJSON reads at most 64 KiB of a response body as JSON into v.
func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(v)
}
