//go:build !linux

package integration

import "os/exec"

// setParentDeathSignal does nothing where the kernel offers no parent-death signal: the tests'
// clean-ups stop the tier.
func setParentDeathSignal(*exec.Cmd) {}
