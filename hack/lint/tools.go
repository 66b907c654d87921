//go:build tools

// Package lint pins the linters' versions in go.mod; nothing imports it.
package lint

import _ "honnef.co/go/tools/cmd/staticcheck"
