package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"
)

// writerFlag, as the first argument, runs the program as the writer process (see runWriter).
const writerFlag = "-writer"

// flipper writes the readiness of pods of the scenario through the status subresource, as a
// kubelet would. It keeps the last version of each pod it wrote, so that a write is one request.
type flipper struct {
	pods   typedcorev1.PodInterface
	latest map[int]*corev1.Pod // by pod index
}

func newFlipper(client kubernetes.Interface, namespace string) *flipper {
	return &flipper{pods: client.CoreV1().Pods(namespace), latest: make(map[int]*corev1.Pod)}
}

// flip makes pod i ready or not ready. It returns when the API server has stored the change, and
// sent, the time just before the request that stored it.
func (f *flipper) flip(ctx context.Context, i int, ready bool) (sent time.Time, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod := f.latest[i]
		if pod == nil {
			got, err := f.pods.Get(ctx, workload.PodName(i), metav1.GetOptions{})
			if err != nil {
				return err
			}
			pod = got
		}
		next := pod.DeepCopy()
		workload.SetStatus(next, i, ready)
		sent = time.Now()
		updated, err := f.pods.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			delete(f.latest, i) // on a conflict, read the pod again
			return err
		}
		f.latest[i] = updated
		return nil
	})
	if err != nil {
		return sent, fmt.Errorf("writing the status of pod %s: %w", workload.PodName(i), err)
	}
	return sent, nil
}

// flip is a write the writer process makes: pod i becomes ready or not.
type flip struct {
	i     int
	ready bool
}

// writerWorkers is how many writes of one line the writer process makes at once.
const writerWorkers = 8

// encodeFlips writes a command line of the writer process: "<pod index>:<1 ready|0 not>", space
// separated.
func encodeFlips(flips []flip) string {
	var b strings.Builder
	for k, f := range flips {
		if k > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(f.i))
		if f.ready {
			b.WriteString(":1")
		} else {
			b.WriteString(":0")
		}
	}
	b.WriteByte('\n')
	return b.String()
}

func decodeFlips(line string) ([]flip, error) {
	var flips []flip
	for _, field := range strings.Fields(line) {
		index, state, ok := strings.Cut(field, ":")
		i, err := strconv.Atoi(index)
		if !ok || err != nil || i < 0 || (state != "0" && state != "1") {
			return nil, fmt.Errorf("bad command %q", field)
		}
		flips = append(flips, flip{i, state == "1"})
	}
	return flips, nil
}

// refreshCommand asks the writer process to read the registered pods again (another writer may
// have changed them); it answers readyReply once done, as it does once it has started.
const (
	refreshCommand = "refresh"
	readyReply     = "ready"
)

// runWriter is the writer process. It reads the registered pods, so that each later write is one
// request, and answers readyReply on stdout. Then it reads lines from stdin until stdin ends: a
// line of flips (encodeFlips) makes them, one alone at once, several as fast as it can with
// writerWorkers requests at a time; refreshCommand reads the pods again. It runs apart from the
// measuring process so that the CPU that process uses is only the informer side's.
func runWriter(args []string) error {
	fs := flag.NewFlagSet("kuberegistry-bench -writer", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the API server")
	kubeContext := fs.String("context", "", "kubeconfig context")
	namespace := fs.String("namespace", "", "namespace of the pods")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *namespace == "" {
		return errors.New("the writer needs -kubeconfig and -namespace")
	}
	cfg, err := loadKubeconfig(*kubeconfig, *kubeContext)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(protobufConfig(cfg))
	if err != nil {
		return err
	}
	// Pod i is always written by flippers[i%writerWorkers], which alone keeps its last version.
	flippers := make([]*flipper, writerWorkers)
	for k := range flippers {
		flippers[k] = newFlipper(client, *namespace)
	}
	ctx := context.Background()
	refresh := func() error {
		list, err := client.CoreV1().Pods(*namespace).List(ctx, metav1.ListOptions{LabelSelector: kuberegistry.LabelsKeyServiceName})
		if err != nil {
			return fmt.Errorf("listing the registered pods: %w", err)
		}
		for k := range list.Items {
			pod := &list.Items[k]
			if i, ok := podIndex(pod.Name); ok {
				flippers[i%writerWorkers].latest[i] = pod
			}
		}
		_, err = fmt.Println(readyReply)
		return err
	}
	if err := refresh(); err != nil {
		return err
	}
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		if lines.Text() == refreshCommand {
			if err := refresh(); err != nil {
				return err
			}
			continue
		}
		flips, err := decodeFlips(lines.Text())
		if err != nil {
			return err
		}
		if len(flips) == 1 {
			if _, err := flippers[flips[0].i%writerWorkers].flip(ctx, flips[0].i, flips[0].ready); err != nil {
				return err
			}
			continue
		}
		errs := make([]error, writerWorkers)
		var wg sync.WaitGroup
		for k := range flippers {
			wg.Go(func() {
				for _, f := range flips {
					if f.i%writerWorkers == k && errs[k] == nil {
						_, errs[k] = flippers[k].flip(ctx, f.i, f.ready)
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return lines.Err()
}

// podIndex is i for workload.PodName(i).
func podIndex(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "pod-")
	i, err := strconv.Atoi(digits)
	return i, ok && err == nil && i >= 0
}

// writerProc is the measuring process's handle on a writer process.
type writerProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string   // lines of its stdout
	done    chan struct{} // closed once the process has exited
	err     error         // why it exited; set before done is closed

	closeOnce sync.Once
}

// startWriter starts this program again as a writer process over the pods of namespace, and
// returns once it has read them.
func startWriter(ctx context.Context, c *cluster, namespace string) (*writerProc, error) {
	if c.writerKubeconfig == "" {
		return nil, errors.New("no kubeconfig for the writer process")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start the writer: %w", err)
	}
	args := []string{writerFlag, "-kubeconfig", c.writerKubeconfig, "-namespace", namespace}
	if c.writerContext != "" {
		args = append(args, "-context", c.writerContext)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the writer process: %w", err)
	}
	w := &writerProc{cmd: cmd, stdin: stdin, replies: make(chan string, 16), done: make(chan struct{})}
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			w.replies <- lines.Text()
		}
		// All of stdout is read: now Wait may close it.
		err := cmd.Wait()
		if err == nil {
			err = errors.New("the writer process ended")
		}
		w.err = fmt.Errorf("writer process: %w", err)
		close(w.done)
	}()
	if err := w.ready(ctx); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// ready waits for the writer's readyReply.
func (w *writerProc) ready(ctx context.Context) error {
	select {
	case reply := <-w.replies:
		if reply != readyReply {
			return fmt.Errorf("writer process: unexpected reply %q", reply)
		}
		return nil
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresh has the writer read the registered pods again, after another writer changed them, so
// that its writes stay one request each; it returns once the writer is done.
func (w *writerProc) refresh(ctx context.Context) error {
	if _, err := io.WriteString(w.stdin, refreshCommand+"\n"); err != nil {
		return fmt.Errorf("writing to the writer process: %w", err)
	}
	return w.ready(ctx)
}

// write asks the writer to make flips: one alone, or several at once. It does not wait for them.
func (w *writerProc) write(flips []flip) error {
	if _, err := io.WriteString(w.stdin, encodeFlips(flips)); err != nil {
		select {
		case <-w.done:
			return w.err
		default:
			return fmt.Errorf("writing to the writer process: %w", err)
		}
	}
	return nil
}

// guard returns a context that also ends when the writer process exits, with its error as cause.
func (w *writerProc) guard(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-w.done:
			cancel(w.err)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// close ends the writer: its stdin closes, and it is killed if it has not exited 10s later.
func (w *writerProc) close() {
	w.closeOnce.Do(func() {
		_ = w.stdin.Close()
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.done
		}
	})
}
