package kratos

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind, go-kratos's resolver loops
// included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
