package main

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
)

// operatorPage is the operator page served at /: one self-contained file (its style and script
// inline, nothing fetched from elsewhere) that reads the JSON API and, with the operator token,
// acts through it.
//
//go:embed ui/index.html
var operatorPage []byte

// pageCSP allows the page's own inline script (by its hash) and style, and requests to this
// worker only.
var pageCSP = func() string {
	script := operatorPage
	if i := bytes.Index(script, []byte("<script>")); i >= 0 {
		script = script[i+len("<script>"):]
		if j := bytes.Index(script, []byte("</script>")); j >= 0 {
			script = script[:j]
		}
	}
	sum := sha256.Sum256(script)
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

func servePage(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		w.Write(operatorPage)
	})
}
