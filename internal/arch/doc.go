// Package arch holds no code: its test checks the import rules of the code base
// (docs/style.md §2), so a wrong import fails the build's tests instead of waiting for a
// reviewer to notice it.
package arch
