package integration

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill the tier if the test binary dies without its
// clean-ups (a panic, a -timeout), so that no tier outlives the tests that started it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
