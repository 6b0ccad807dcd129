// Package reconcile turns an identity change into the SCIM requests that carry it out, shaped by a
// per-object data model, with the semantics of Omada's SCIM 2.0 connector (the seed's "Data model"
// through "Task Mappings" sections) and DESIGN.md §4.
//
// A Model is loaded from YAML (LoadModel, validated against schemas/datamodel.schema.json with
// errors naming file, line and field) or imported from Omada XML (ImportOmada) and written back as
// YAML (WriteYAML). A Planner resolves a Change against the target through a read-only Reader
// (Resolve Object ID, Resolve Reference Property, and a GET of the current object when the object
// reconciles) and returns a Plan: the requests in order, the rule behind each part of each body,
// or why nothing needs sending.
//
// Request building follows the seed's order: the {Operation}Request template (or an empty body with
// the object's schemas), the task mappings, the reconciliation merge with the current object, then
// the JSONPath properties. docs/datamodel.md records every choice the seed leaves open.
package reconcile
