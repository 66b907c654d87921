package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Client-side rate limits high enough that throttling in client-go never shapes a measurement.
const (
	clientQPS   = 1000
	clientBurst = 2000
)

// cluster is the API server the benchmark runs against: the local control plane started here, or
// a cluster named by a kubeconfig.
type cluster struct {
	config *rest.Config // admin access, client throttling raised; JSON, as client-go defaults
	// writerKubeconfig and writerContext let the writer process reach the same API server.
	writerKubeconfig string
	writerContext    string
	version          string // of kube-apiserver
	// local is the control plane this program started, nil for a kubeconfig's cluster.
	local   *envtest.Environment
	tempDir string // certificates and the writer's kubeconfig of a local control plane
}

// connect returns the cluster of the flags: -kubeconfig's, or else a local control plane.
func connect(f *flags) (*cluster, error) {
	if f.kubeconfig != "" {
		return fromKubeconfig(f.kubeconfig, f.kubeContext)
	}
	dir, err := controlPlaneAssets(f.assets)
	if err != nil {
		return nil, err
	}
	return startLocal(dir)
}

// fromKubeconfig loads a kubeconfig, and its current context unless one is named.
func fromKubeconfig(path, kubeContext string) (*cluster, error) {
	cfg, err := loadKubeconfig(path, kubeContext)
	if err != nil {
		return nil, err
	}
	c := &cluster{config: cfg, writerKubeconfig: path, writerContext: kubeContext}
	if err := c.readVersion(); err != nil {
		return nil, err
	}
	return c, nil
}

func loadKubeconfig(path, kubeContext string) (*rest.Config, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext},
	).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	return cfg, nil
}

// controlPlaneAssets returns the directory holding kube-apiserver and etcd: the -assets flag,
// else KUBEBUILDER_ASSETS, else what hack/control-plane.sh of this repository prints (it builds
// the binaries on its first run, which takes minutes, and is instant once they are cached).
func controlPlaneAssets(flagValue string) (string, error) {
	dir := flagValue
	if dir == "" {
		dir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", fmt.Errorf("no -assets, no KUBEBUILDER_ASSETS and %w; or pass -kubeconfig", err)
		}
		script := filepath.Join(root, "hack", "control-plane.sh")
		logf("finding the control plane binaries with %s", script)
		var out bytes.Buffer
		cmd := exec.Command(script)
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%s: %w", script, err)
		}
		dir = strings.TrimSpace(out.String())
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("control plane binaries in %s: %w", dir, err)
		}
		if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("control plane binaries in %s: %s is not an executable file", dir, name)
		}
	}
	return dir, nil
}

// repoRoot finds the kuberegistry repository around the working directory, by its
// hack/control-plane.sh.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "control-plane.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the working directory is not inside the kuberegistry repository")
		}
		dir = parent
	}
}

// startLocal starts etcd and kube-apiserver on loopback with envtest, as test/integration does.
func startLocal(dir string) (*cluster, error) {
	// envtest logs through controller-runtime's logger; errors only reach stderr with a sink.
	ctrllog.SetLogger(funcr.New(func(prefix, args string) {
		fmt.Fprintln(os.Stderr, "envtest:", prefix, args)
	}, funcr.Options{}))
	tempDir, err := os.MkdirTemp("", "kuberegistry-bench-")
	if err != nil {
		return nil, err
	}
	useExisting := false
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		UseExistingCluster:       &useExisting,
		ControlPlaneStartTimeout: 2 * time.Minute, // a loaded 2-core machine can exceed the default 20s
		ControlPlaneStopTimeout:  time.Minute,
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Path: filepath.Join(dir, "kube-apiserver"), CertDir: filepath.Join(tempDir, "certs")},
			Etcd:      &envtest.Etcd{Path: filepath.Join(dir, "etcd")},
		},
	}
	// Close open watches within 2s of SIGTERM instead of waiting out the 60s shutdown timeout.
	env.ControlPlane.APIServer.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	// etcd's default 2 GiB quota is within reach of -scale at 100,000 pods (about 15 KB of
	// database per pod created, before compaction frees the first revisions); past it, every
	// write fails.
	env.ControlPlane.Etcd.Configure().Set("quota-backend-bytes", strconv.Itoa(8<<30))
	if err := os.Mkdir(filepath.Join(tempDir, "certs"), 0o700); err != nil {
		_ = os.RemoveAll(tempDir)
		return nil, err
	}
	logf("starting etcd and kube-apiserver from %s", dir)
	cfg, err := env.Start()
	c := &cluster{local: env, tempDir: tempDir}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	c.config = cfg

	// The writer process authenticates with a client certificate of its own, as an administrator.
	user, err := env.AddUser(envtest.User{Name: "kuberegistry-bench-writer", Groups: []string{"system:masters"}}, &rest.Config{})
	if err == nil {
		var kubeconfig []byte
		if kubeconfig, err = user.KubeConfig(); err == nil {
			c.writerKubeconfig = filepath.Join(tempDir, "writer.kubeconfig")
			err = os.WriteFile(c.writerKubeconfig, kubeconfig, 0o600)
		}
	}
	if err == nil {
		err = c.readVersion()
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("preparing the control plane: %w", err)
	}
	return c, nil
}

func (c *cluster) readVersion() error {
	client, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		return err
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("reading the API server's version at %s: %w", c.config.Host, err)
	}
	c.version = v.GitVersion
	return nil
}

// stop stops a local control plane and removes its files; for a kubeconfig's cluster it does
// nothing. It is safe to call more than once.
func (c *cluster) stop() {
	if c.local != nil {
		logf("stopping the control plane")
		if err := c.local.Stop(); err != nil {
			logf("stopping the control plane: %v", err)
		}
		c.local = nil
	}
	if c.tempDir != "" {
		_ = os.RemoveAll(c.tempDir)
		c.tempDir = ""
	}
}

// jsonClient is a clientset as kubernetes.NewForConfig builds it by default: JSON.
func (c *cluster) jsonClient() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(c.config)
}

// protobufConfig is the configuration kuberegistry.NewForConfig uses: protobuf first.
func protobufConfig(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return cfg
}

// protobufClient is a clientset that speaks protobuf, as kuberegistry.NewForConfig builds.
func (c *cluster) protobufClient() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(protobufConfig(c.config))
}

// withTimeout is context.Background bounded by d, for clean-ups that must run after the main
// context ended.
func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
