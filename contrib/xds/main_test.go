package xds

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: Close and the end of Run must
// wait for every goroutine they started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
