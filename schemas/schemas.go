// Package schemas embeds the JSON Schemas that define scimflow's contracts: the event envelope, the
// outcome event, the worker configuration and the data model.
package schemas

import "embed"

// FS holds every *.json schema of this folder, by file name.
//
//go:embed *.json
var FS embed.FS
