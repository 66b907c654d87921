package grpc

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every resolver must end its
// goroutine at Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
