package main

// The tier of the xDS benchmark: one kuberegistry Registry and one xds.Server over it, in a
// process of its own, so that its CPU time — read with getrusage by the process itself — is the
// tier's alone: neither the clients' nor the measuring process's.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/contrib/xds"
	"google.golang.org/grpc"
)

// xdsTierFlag, as the first argument, runs the program as the tier process.
const xdsTierFlag = "-xds-tier-process"

// Commands of the tier process, and the first word of their answers.
const (
	usageCommand       = "usage"        // answered with tierUsage's fields
	profileCommand     = "profile"      // "profile <path>": start a CPU profile into that file
	stopProfileCommand = "stop-profile" // end it
	readyWord          = "ready"        // its first line: "ready <address>", once the tier is synced
	doneWord           = "done"         // the answer to the profile commands
)

// tierUsage is what the tier process has used so far.
type tierUsage struct {
	user, system time.Duration // getrusage(RUSAGE_SELF)
	// Read and write system calls, and the bytes they moved, from /proc/self/io.
	reads, writes, readBytes, writeBytes int64
	streams                              int64  // open xDS streams (Server.Stats)
	pushes                               uint64 // responses sent (Server.Stats)
}

func (u tierUsage) cpu() time.Duration { return u.user + u.system }

// encode writes u as the tier process answers usageCommand.
func (u tierUsage) encode() string {
	return fmt.Sprintf("%d %d %d %d %d %d %d %d", u.user, u.system, u.reads, u.writes, u.readBytes, u.writeBytes, u.streams, u.pushes)
}

func decodeTierUsage(line string) (tierUsage, error) {
	var u tierUsage
	var user, system int64
	n, err := fmt.Sscanf(line, "%d %d %d %d %d %d %d %d", &user, &system, &u.reads, &u.writes, &u.readBytes, &u.writeBytes, &u.streams, &u.pushes)
	if err != nil || n != 8 {
		return u, fmt.Errorf("malformed usage %q: %v", line, err)
	}
	u.user, u.system = time.Duration(user), time.Duration(system)
	return u, nil
}

// sub is u − before, for the counters that only grow.
func (u tierUsage) sub(before tierUsage) tierUsage {
	return tierUsage{
		user: u.user - before.user, system: u.system - before.system,
		reads: u.reads - before.reads, writes: u.writes - before.writes,
		readBytes: u.readBytes - before.readBytes, writeBytes: u.writeBytes - before.writeBytes,
		streams: u.streams, pushes: u.pushes - before.pushes,
	}
}

// readSelfIO reads the system call and byte counts of /proc/self/io (zero where absent).
func readSelfIO(u *tierUsage) {
	content, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(content), "\n") {
		key, value, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(value, 10, 64)
		switch key {
		case "syscr":
			u.reads = n
		case "syscw":
			u.writes = n
		case "rchar":
			u.readBytes = n
		case "wchar":
			u.writeBytes = n
		}
	}
}

// runTierProcess is the tier process: a Registry over the namespace's pods and an xds.Server
// over it on a loopback port, served with the package's recommended gRPC options. It answers
// "ready <address>" once the tier serves the registry's first state, then usageCommand until
// stdin ends.
func runTierProcess(args []string) error {
	fs := flag.NewFlagSet("kuberegistry-bench "+xdsTierFlag, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the API server")
	kubeContext := fs.String("context", "", "kubeconfig context")
	namespace := fs.String("namespace", "", "namespace of the pods")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *namespace == "" {
		return errors.New("the tier process needs -kubeconfig and -namespace")
	}
	cfg, err := loadKubeconfig(*kubeconfig, *kubeContext)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg, err := kuberegistry.NewForConfig(cfg, kuberegistry.WithNamespace(*namespace), kuberegistry.WithLogger(logger))
	if err != nil {
		return err
	}
	defer func() { _ = reg.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := reg.Start(ctx); err != nil {
		return fmt.Errorf("starting the tier's registry: %w", err)
	}
	tier, err := xds.NewServer([]kuberegistry.Catalog{reg}, xds.WithLogger(logger))
	if err != nil {
		return err
	}
	g := grpc.NewServer(xds.GRPCServerOptions()...)
	tier.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer g.Stop() // before wg.Wait: ends Serve
	defer cancel() // before g.Stop: Run ends every stream
	wg.Go(func() { _ = g.Serve(lis) })
	runErr := make(chan error, 1)
	wg.Go(func() { runErr <- tier.Run(ctx) })
	for !tier.Synced() {
		select {
		case err := <-runErr:
			return fmt.Errorf("the tier ended before it synced: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	fmt.Printf("%s %s\n", readyWord, lis.Addr())
	var profile *os.File // the CPU profile being written, if any
	defer func() {
		if profile != nil {
			pprof.StopCPUProfile()
			_ = profile.Close()
		}
	}()
	return serveCommands(func(line string) (string, error) {
		switch command, path, _ := strings.Cut(line, " "); command {
		case usageCommand:
			return tierUsageNow(tier).encode(), nil
		case profileCommand:
			if profile != nil {
				return "", errors.New("a profile is already being written")
			}
			f, err := os.Create(path)
			if err != nil {
				return "", err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				_ = f.Close()
				return "", err
			}
			profile = f
			return doneWord, nil
		case stopProfileCommand:
			if profile == nil {
				return "", errors.New("no profile is being written")
			}
			pprof.StopCPUProfile()
			err := profile.Close()
			profile = nil
			return doneWord, err
		default:
			return "", fmt.Errorf("unknown command %q", line)
		}
	})
}

// tierUsageNow is what this process — the tier process — has used so far.
func tierUsageNow(tier *xds.Server) tierUsage {
	var u tierUsage
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		u.user, u.system = time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
	}
	readSelfIO(&u)
	st := tier.Stats()
	u.streams, u.pushes = st.Streams, st.Pushes
	return u
}

// tierProc is the measuring process's handle on the tier process.
type tierProc struct {
	*childProc
	addr string // where it serves xDS
}

// startTier starts the tier process over the pods of namespace and returns once it is synced.
func startTier(ctx context.Context, c *cluster, namespace string) (*tierProc, error) {
	args := []string{xdsTierFlag, "-kubeconfig", c.writerKubeconfig, "-namespace", namespace}
	if c.writerContext != "" {
		args = append(args, "-context", c.writerContext)
	}
	p, err := startChild("xDS tier", args...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	line, err := p.receive(ctx)
	if err != nil {
		p.close(10 * time.Second)
		return nil, err
	}
	addr, ok := strings.CutPrefix(line, readyWord+" ")
	if !ok {
		p.close(10 * time.Second)
		return nil, fmt.Errorf("the xDS tier: unexpected answer %q", line)
	}
	return &tierProc{childProc: p, addr: addr}, nil
}

// usage asks the tier process what it has used so far.
func (t *tierProc) usage(ctx context.Context) (tierUsage, error) {
	line, err := t.ask(ctx, usageCommand)
	if err != nil {
		return tierUsage{}, err
	}
	return decodeTierUsage(line)
}

// profile has the tier process start a CPU profile into path, or with path "", stop it.
func (t *tierProc) profile(ctx context.Context, path string) error {
	command := stopProfileCommand
	if path != "" {
		command = profileCommand + " " + path
	}
	line, err := t.ask(ctx, command)
	if err == nil && line != doneWord {
		err = fmt.Errorf("the xDS tier: unexpected answer %q", line)
	}
	return err
}
