package kuberegistrytest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test or an example leaves a goroutine behind: every registry
// the helpers start must be closed at cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
