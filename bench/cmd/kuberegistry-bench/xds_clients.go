package main

// The clients of the xDS benchmark, in a process of their own: N client pods' worth of
// discovery, all watching the same service, either each with its own kuberegistry Registry on
// its own connection to the API server (direct), or each with its own gRPC connection to the
// tier (an xds.Discovery, or a raw state-of-the-world ADS stream as grpc-go's xDS client opens).
// The process notes when each client's watcher returns a set, and answers, for a change the
// measuring process wrote, how long after the write each client had it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	"github.com/kuberegistry/kuberegistry/contrib/xds"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/client-go/rest"
)

// xdsClientsFlag, as the first argument, runs the program as the clients process.
const xdsClientsFlag = "-xds-clients-process"

// Kinds of clients.
const (
	clientDirect    = "direct"    // a kuberegistry Registry on its own API server connection
	clientDiscovery = "discovery" // an xds.Discovery (delta ADS) on its own gRPC connection to the tier
	clientADS       = "ads"       // a raw state-of-the-world ADS stream, as grpc-go's xDS client subscribes
)

// awaitCommand asks the clients process for the delays of a change: "await <pod> <0|1> <size>
// <sent, Unix ns>"; the answer is "seen" and each client's delay in nanoseconds.
const (
	awaitCommand = "await"
	seenWord     = "seen"
)

// clientStartWorkers is how many clients start at once: each direct client lists every
// registered pod, and the API server answers a few lists at a time best.
const clientStartWorkers = 8

// observation is a set a client's watcher returned: the IPs of its instances, and when.
type observation struct {
	ips map[string]bool
	at  time.Time
}

// clientView is the latest set of one client, written by its watcher, read by await.
type clientView struct {
	latest atomic.Pointer[observation]
	wake   chan struct{} // capacity 1: a set arrived since await last looked
}

func newClientView() *clientView { return &clientView{wake: make(chan struct{}, 1)} }

func (v *clientView) observe(at time.Time, ips map[string]bool) {
	v.latest.Store(&observation{ips: ips, at: at})
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// await returns when the client's latest set has size instances and, as present says, the
// instance at ip or not; it returns when the client received that set.
func (v *clientView) await(ctx context.Context, ip string, present bool, size int) (time.Time, error) {
	for {
		if o := v.latest.Load(); o != nil && len(o.ips) == size && o.ips[ip] == present {
			return o.at, nil
		}
		select {
		case <-v.wake:
		case <-ctx.Done():
			return time.Time{}, context.Cause(ctx)
		}
	}
}

// instanceIPs is the set of the hosts of the instances' grpc:// endpoints (else their first).
func instanceIPs(set []*kuberegistry.ServiceInstance) map[string]bool {
	ips := make(map[string]bool, len(set))
	for _, inst := range set {
		endpoint := ""
		for _, e := range inst.Endpoints {
			if strings.HasPrefix(e, "grpc://") {
				endpoint = e
				break
			}
		}
		if endpoint == "" && len(inst.Endpoints) > 0 {
			endpoint = inst.Endpoints[0]
		}
		if u, err := url.Parse(endpoint); err == nil {
			ips[u.Hostname()] = true
		}
	}
	return ips
}

// Field numbers of envoy.config.endpoint.v3.ClusterLoadAssignment down to an endpoint's IP.
const (
	claClusterName    = 1 // ClusterLoadAssignment.cluster_name
	claEndpoints      = 2 // ClusterLoadAssignment.endpoints: LocalityLbEndpoints
	localityEndpoints = 2 // LocalityLbEndpoints.lb_endpoints: LbEndpoint
	lbEndpoint        = 1 // LbEndpoint.endpoint: Endpoint
	endpointAddress   = 1 // Endpoint.address: Address
	socketAddress     = 1 // Address.socket_address: SocketAddress
	socketIP          = 2 // SocketAddress.address
)

// assignmentIPs returns the cluster name of an encoded ClusterLoadAssignment and the set of
// its endpoints' addresses. It walks the wire format to them and skips the rest — the
// instances' metadata is most of an assignment — so that the clients, which share the
// machine with the API server and the tier, cost little more than receiving the response.
func assignmentIPs(encoded []byte) (cluster string, ips map[string]bool, err error) {
	ips = make(map[string]bool)
	err = eachField(encoded, func(num protowire.Number, value []byte) error {
		switch num {
		case claClusterName:
			cluster = string(value)
		case claEndpoints:
			return eachNested(value, []protowire.Number{localityEndpoints, lbEndpoint, endpointAddress, socketAddress, socketIP}, func(ip []byte) {
				ips[string(ip)] = true
			})
		}
		return nil
	})
	return cluster, ips, err
}

// eachField calls fn with every length-delimited field of a message, and skips the others.
func eachField(b []byte, fn func(num protowire.Number, value []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		value, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, value); err != nil {
			return err
		}
	}
	return nil
}

// eachNested calls fn with the value at every path of field numbers in b.
func eachNested(b []byte, path []protowire.Number, fn func(value []byte)) error {
	return eachField(b, func(num protowire.Number, value []byte) error {
		switch {
		case num != path[0]:
			return nil
		case len(path) == 1:
			fn(value)
			return nil
		default:
			return eachNested(value, path[1:], fn)
		}
	})
}

// benchClient is one client; close ends it and waits for its goroutines.
type benchClient struct {
	view  *clientView
	close func()
}

// clientsConfig is what the clients process runs.
type clientsConfig struct {
	kind, service          string
	clients, size          int // size: instances of the service at the start
	kubeconfig, kubeCtx    string
	namespace, tierAddress string
}

func runClientsProcess(args []string) error {
	fs := flag.NewFlagSet("kuberegistry-bench "+xdsClientsFlag, flag.ContinueOnError)
	var c clientsConfig
	fs.StringVar(&c.kind, "kind", clientDirect, "direct, discovery or ads")
	fs.IntVar(&c.clients, "clients", 1, "number of clients")
	fs.StringVar(&c.service, "service", "", "the service every client watches")
	fs.IntVar(&c.size, "size", 0, "instances of the service at the start")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig of the API server (direct)")
	fs.StringVar(&c.kubeCtx, "context", "", "kubeconfig context (direct)")
	fs.StringVar(&c.namespace, "namespace", "", "namespace of the pods (direct)")
	fs.StringVar(&c.tierAddress, "tier", "", "address of the xDS tier (discovery, ads)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.clients < 1 || c.service == "" || c.size < 1 {
		return errors.New("the clients process needs -clients, -service and -size")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	failed := make(chan error, 1) // the first client failure, answered at the next command
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	var open func(k int) (benchClient, error)
	switch c.kind {
	case clientDirect:
		if c.kubeconfig == "" || c.namespace == "" {
			return errors.New("direct clients need -kubeconfig and -namespace")
		}
		cfg, err := loadKubeconfig(c.kubeconfig, c.kubeCtx)
		if err != nil {
			return err
		}
		open = func(int) (benchClient, error) {
			// A dialer of its own keeps client-go from sharing one cached transport, and so one
			// HTTP/2 connection, between the registries: a real fleet has a connection per pod.
			own := rest.CopyConfig(cfg)
			own.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
			reg, err := kuberegistry.NewForConfig(own, kuberegistry.WithNamespace(c.namespace), kuberegistry.WithLogger(logger))
			if err != nil {
				return benchClient{}, err
			}
			if err := reg.Start(ctx); err != nil {
				_ = reg.Close()
				return benchClient{}, err
			}
			return watchCatalog(ctx, reg, c.service, func() { _ = reg.Close() }, fail)
		}
	case clientDiscovery, clientADS:
		if c.tierAddress == "" {
			return fmt.Errorf("%s clients need -tier", c.kind)
		}
		open = func(k int) (benchClient, error) {
			conn, err := grpc.NewClient(c.tierAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return benchClient{}, err
			}
			node := fmt.Sprintf("bench-client-%d", k)
			if c.kind == clientADS {
				return openADSClient(ctx, conn, node, c.service, fail)
			}
			d, err := xds.NewDiscovery(conn, xds.WithNodeID(node), xds.WithDiscoveryLogger(logger))
			if err != nil {
				_ = conn.Close()
				return benchClient{}, err
			}
			return watchCatalog(ctx, d, c.service, func() { _ = d.Close(); _ = conn.Close() }, fail)
		}
	default:
		return fmt.Errorf("unknown -kind %q: direct, discovery or ads", c.kind)
	}

	began := time.Now()
	clients, err := openClients(c.clients, open)
	defer closeClients(clients)
	if err != nil {
		return err
	}
	// Ready once every client has the whole service.
	readyCtx, cancelReady := context.WithTimeout(ctx, 5*time.Minute)
	for _, cl := range clients {
		for {
			o := cl.view.latest.Load()
			if o != nil && len(o.ips) == c.size {
				break
			}
			select {
			case <-cl.view.wake:
			case err := <-failed:
				cancelReady()
				return err
			case <-readyCtx.Done():
				cancelReady()
				return fmt.Errorf("a client did not receive the %d instances of %s within 5 minutes", c.size, c.service)
			}
		}
	}
	cancelReady()
	fmt.Printf("%s %d\n", readyWord, time.Since(began))

	return serveCommands(func(line string) (string, error) {
		select {
		case err := <-failed:
			return "", err
		default:
		}
		pod, present, size, sent, err := parseAwait(line)
		if err != nil {
			return "", err
		}
		ip := workload.IP(pod)
		awaitCtx, cancelAwait := context.WithTimeout(ctx, 2*time.Minute)
		defer cancelAwait()
		var b strings.Builder
		b.WriteString(seenWord)
		for k, cl := range clients {
			at, err := cl.view.await(awaitCtx, ip, present, size)
			if err != nil {
				return "", fmt.Errorf("client %d did not see pod %d become ready=%v (%d instances): %w", k, pod, present, size, err)
			}
			b.WriteByte(' ')
			b.WriteString(strconv.FormatInt(int64(at.Sub(sent)), 10))
		}
		return b.String(), nil
	})
}

// encodeAwait writes an awaitCommand.
func encodeAwait(pod int, ready bool, size int, sent time.Time) string {
	r := 0
	if ready {
		r = 1
	}
	return fmt.Sprintf("%s %d %d %d %d", awaitCommand, pod, r, size, sent.UnixNano())
}

func parseAwait(line string) (pod int, ready bool, size int, sent time.Time, err error) {
	var r int
	var ns int64
	n, err := fmt.Sscanf(line, awaitCommand+" %d %d %d %d", &pod, &r, &size, &ns)
	if err != nil || n != 4 || (r != 0 && r != 1) || pod < 0 || size < 0 {
		return 0, false, 0, time.Time{}, fmt.Errorf("malformed command %q", line)
	}
	return pod, r == 1, size, time.Unix(0, ns), nil
}

// parseSeen reads the answer to an awaitCommand.
func parseSeen(line string) ([]time.Duration, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0] != seenWord {
		return nil, fmt.Errorf("unexpected answer %q", line)
	}
	delays := make([]time.Duration, 0, len(fields)-1)
	for _, f := range fields[1:] {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("unexpected answer %q", line)
		}
		delays = append(delays, time.Duration(ns))
	}
	return delays, nil
}

// openClients opens n clients, clientStartWorkers at a time; on an error, it returns those it
// opened with it.
func openClients(n int, open func(k int) (benchClient, error)) ([]benchClient, error) {
	clients := make([]benchClient, n)
	opened := make([]bool, n)
	errs := make([]error, clientStartWorkers)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := range clientStartWorkers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n || failed.Load() {
					return
				}
				cl, err := open(k)
				if err != nil {
					errs[w] = fmt.Errorf("opening client %d: %w", k, err)
					failed.Store(true)
					return
				}
				clients[k], opened[k] = cl, true
			}
		})
	}
	wg.Wait()
	var kept []benchClient
	for k, ok := range opened {
		if ok {
			kept = append(kept, clients[k])
		}
	}
	return kept, errors.Join(errs...)
}

// closeClients closes the clients, several at once.
func closeClients(clients []benchClient) {
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(cl.close)
	}
	wg.Wait()
}

// watchCatalog watches service on d with a goroutine blocked in Next, as a client-side load
// balancer would. stop ends d (and so Next); the client's close calls it and waits.
func watchCatalog(ctx context.Context, d kuberegistry.Discovery, service string, stop func(), fail func(error)) (benchClient, error) {
	w, err := d.Watch(ctx, service)
	if err != nil {
		stop()
		return benchClient{}, err
	}
	view := newClientView()
	done := make(chan struct{})
	var closing atomic.Bool
	go func() {
		defer close(done)
		for {
			set, err := w.Next()
			at := time.Now()
			if err != nil {
				if !closing.Load() {
					fail(fmt.Errorf("watcher of %s: %w", service, err))
				}
				return
			}
			view.observe(at, instanceIPs(set))
		}
	}()
	return benchClient{view: view, close: func() {
		closing.Store(true)
		_ = w.Stop()
		stop()
		<-done
	}}, nil
}

// openADSClient subscribes on one state-of-the-world ADS stream to the listener, route
// configuration, cluster and assignment of service, as grpc-go's xDS client does for
// xds:///service, and ACKs every response; each assignment received is the client's set.
func openADSClient(ctx context.Context, conn *grpc.ClientConn, node, service string, fail func(error)) (benchClient, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		cancel()
		_ = conn.Close()
		return benchClient{}, err
	}
	names := []string{service}
	for k, typeURL := range []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType} {
		req := &discoverygrpc.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names}
		if k == 0 {
			req.Node = &corev3.Node{Id: node}
		}
		if err := stream.Send(req); err != nil {
			cancel()
			_ = conn.Close()
			return benchClient{}, err
		}
	}
	view := newClientView()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := stream.Recv()
			at := time.Now()
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("ADS stream: %w", err))
				}
				return
			}
			err = stream.Send(&discoverygrpc.DiscoveryRequest{
				TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce(), ResourceNames: names,
			})
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("ADS stream: %w", err))
				}
				return
			}
			if resp.GetTypeUrl() != resourcev3.EndpointType {
				continue
			}
			for _, res := range resp.GetResources() {
				cluster, ips, err := assignmentIPs(res.GetValue())
				if err != nil {
					fail(fmt.Errorf("ADS stream: decoding an assignment: %w", err))
					return
				}
				if cluster == service {
					view.observe(at, ips)
				}
			}
		}
	}()
	return benchClient{view: view, close: func() {
		cancel()
		<-done
		_ = conn.Close()
	}}, nil
}

// clientsProc is the measuring process's handle on the clients process.
type clientsProc struct {
	*childProc
	ready time.Duration // from its start to every client having the whole service
}

// startClients starts n clients of kind watching service, which has size instances, and returns
// once every client has them all.
func startClients(ctx context.Context, c *cluster, namespace, tierAddress, kind, service string, n, size int) (*clientsProc, error) {
	args := []string{xdsClientsFlag, "-kind", kind, "-clients", strconv.Itoa(n), "-service", service, "-size", strconv.Itoa(size)}
	if kind == clientDirect {
		args = append(args, "-kubeconfig", c.writerKubeconfig, "-namespace", namespace)
		if c.writerContext != "" {
			args = append(args, "-context", c.writerContext)
		}
	} else {
		args = append(args, "-tier", tierAddress)
	}
	p, err := startChild(fmt.Sprintf("%d %s clients", n, kind), args...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	line, err := p.receive(ctx)
	var took int64
	if err == nil {
		if _, scanErr := fmt.Sscanf(line, readyWord+" %d", &took); scanErr != nil {
			err = fmt.Errorf("the clients: unexpected answer %q", line)
		}
	}
	if err != nil {
		p.close(time.Minute)
		return nil, err
	}
	return &clientsProc{childProc: p, ready: time.Duration(took)}, nil
}

// await returns each client's delay from sent to its receipt of the change of pod, after which
// the service has size instances.
func (p *clientsProc) await(ctx context.Context, pod int, ready bool, size int, sent time.Time) ([]time.Duration, error) {
	line, err := p.ask(ctx, encodeAwait(pod, ready, size, sent))
	if err != nil {
		return nil, err
	}
	return parseSeen(line)
}
