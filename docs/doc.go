// Package docs holds scimflow's documentation (the Markdown files beside this one). It has no
// code; its test checks that every message the documentation quotes is what the program says.
package docs
