// Package integration tests kuberegistry against a real kube-apiserver backed
// by a real etcd, both listening on loopback only. There is no kubelet,
// scheduler or controller-manager: tests create pods and then write their
// status themselves (see helpers_test.go).
//
// The binaries come from KUBEBUILDER_ASSETS, which hack/control-plane.sh
// prints:
//
//	export KUBEBUILDER_ASSETS="$(hack/control-plane.sh)"
//
// Without them every test is skipped, unless KUBEREGISTRY_REQUIRE_INTEGRATION=1
// (as in `make test` and CI), in which case the package fails.
package integration

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	// envAssets is envtest's own variable for the binaries' directory.
	envAssets = "KUBEBUILDER_ASSETS"
	// envRequire turns missing binaries from a skip into a failure.
	envRequire = "KUBEREGISTRY_REQUIRE_INTEGRATION"

	howToGetBinaries = "run `make test`, or build kube-apiserver and etcd once with\n" +
		"\texport KUBEBUILDER_ASSETS=\"$(hack/control-plane.sh)\"\n" +
		"from the repository root and run the tests again"
)

var (
	// testEnv is the shared control plane, nil when the tests are skipped.
	testEnv *envtest.Environment
	// adminConfig authenticates as a member of system:masters.
	adminConfig *rest.Config
	// skipReason is set when the binaries are absent; requireControlPlane
	// skips on it.
	skipReason string
	// certDir holds the API server's certificates. It is ours rather than
	// envtest's so that it survives restartAPIServer (see there).
	certDir string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse() // for -test.timeout, read below
	// envtest logs through controller-runtime's logger; without a sink it
	// warns on stderr after a while. Errors and V(0) messages are enough.
	ctrllog.SetLogger(funcr.New(func(prefix, args string) {
		fmt.Fprintln(os.Stderr, prefix, args)
	}, funcr.Options{}))

	dir, missing := findBinaries()
	if missing != "" {
		if os.Getenv(envRequire) == "1" {
			fmt.Fprintf(os.Stderr, "FAIL: %s=1 but the control plane binaries are missing: %s.\nTo get them, %s.\n",
				envRequire, missing, howToGetBinaries)
			return 1
		}
		fmt.Fprintf(os.Stderr, "integration: skipping all tests, the control plane binaries are missing: %s.\nTo run them, %s.\n",
			missing, howToGetBinaries)
		skipReason = fmt.Sprintf("no control plane (%s); export KUBEBUILDER_ASSETS=\"$(hack/control-plane.sh)\"", missing)
		return m.Run()
	}

	if err := startControlPlane(dir); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the control plane from %s: %v\n", dir, err)
		stopControlPlane()
		return 1
	}
	defer stopControlPlane()
	stopOnInterrupt()
	stopBeforeTimeout()
	return m.Run()
}

// findBinaries returns the directory holding kube-apiserver and etcd, or a
// reason why there is none. It never builds or downloads anything.
func findBinaries() (dir, missing string) {
	dir = os.Getenv(envAssets)
	if dir == "" {
		return "", envAssets + " is not set"
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Sprintf("%s=%s: %v", envAssets, dir, err)
		}
		if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			return "", fmt.Sprintf("%s=%s: %s is not an executable file", envAssets, dir, name)
		}
	}
	return dir, ""
}

func startControlPlane(dir string) error {
	var err error
	certDir, err = os.MkdirTemp("", "kuberegistry-apiserver-")
	if err != nil {
		return err
	}
	useExisting := false
	testEnv = &envtest.Environment{
		BinaryAssetsDirectory: dir,
		// Never talk to whatever cluster USE_EXISTING_CLUSTER would pick.
		UseExistingCluster: &useExisting,
		// A loaded 2-core CI machine can take well over envtest's default
		// 20s to bring kube-apiserver up.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		ControlPlane: envtest.ControlPlane{
			// Explicit paths, so TEST_ASSET_* variables cannot point
			// envtest at other binaries than the ones checked above.
			APIServer: &envtest.APIServer{
				Path:    filepath.Join(dir, "kube-apiserver"),
				CertDir: certDir,
			},
			Etcd: &envtest.Etcd{Path: filepath.Join(dir, "etcd")},
		},
	}
	// On SIGTERM, kube-apiserver closes open watches within this grace period; with the default
	// (0) it leaves them open and only exits when its HTTP server's shutdown times out (60s),
	// which would make restartAPIServer slow with any informer connected.
	testEnv.ControlPlane.APIServer.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	// Set KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT=true to see the servers' logs.
	cfg, err := testEnv.Start()
	if err != nil {
		return err
	}
	adminConfig = cfg
	return nil
}

var stopOnce sync.Once

// stopControlPlane stops etcd and kube-apiserver and removes their files. It
// may be called more than once, from any goroutine.
func stopControlPlane() {
	stopOnce.Do(func() {
		if testEnv != nil {
			if err := testEnv.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "integration: stopping the control plane: %v\n", err)
			}
		}
		if certDir != "" {
			_ = os.RemoveAll(certDir)
		}
	})
}

// The servers run in their own process group, so they outlive a test binary
// that dies without stopping them. Two common ways to die are covered here.

// stopOnInterrupt stops the servers when the tests are interrupted (^C).
func stopOnInterrupt() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "integration: %v: stopping the control plane\n", sig)
		stopControlPlane()
		os.Exit(1)
	}()
}

// stopBeforeTimeout stops the servers shortly before `go test -timeout`
// panics the test binary, which would skip every deferred cleanup.
func stopBeforeTimeout() {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return
	}
	timeout, ok := f.Value.(flag.Getter).Get().(time.Duration)
	const margin = 5 * time.Second
	if !ok || timeout <= 2*margin {
		return
	}
	time.AfterFunc(timeout-margin, func() {
		fmt.Fprintln(os.Stderr, "integration: test timeout is near: stopping the control plane")
		stopControlPlane()
	})
}

// requireControlPlane skips the test when the control plane is not running.
func requireControlPlane(t testing.TB) {
	t.Helper()
	if testEnv == nil {
		t.Skip(skipReason)
	}
}
