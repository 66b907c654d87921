package main

// The child processes of the xDS benchmark — the tier, the clients, the loopback sink — are this
// program again, started with a helper flag as first argument. Each answers one line on stdout
// per command line it reads on stdin, and ends when stdin closes.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// xdsHelpers are the helper modes, by their first argument.
var xdsHelpers = map[string]func(args []string) error{
	xdsTierFlag:    runTierProcess,
	xdsClientsFlag: runClientsProcess,
	xdsSinkFlag:    runSinkProcess,
}

// runXDSHelper runs the helper mode named by args[0], if it is one, and reports whether it was.
func runXDSHelper(args []string) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	run, ok := xdsHelpers[args[0]]
	if !ok {
		return false, nil
	}
	return true, run(args[1:])
}

// errorReply starts the answer of a child whose command failed.
const errorReply = "error "

// serveCommands answers every line of stdin with handle's reply on stdout, until stdin ends or
// handle fails; a failure is answered with errorReply and returned.
func serveCommands(handle func(line string) (string, error)) error {
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(nil, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	for lines.Scan() {
		reply, err := handle(lines.Text())
		if err != nil {
			fmt.Fprintf(out, "%s%s\n", errorReply, strings.ReplaceAll(err.Error(), "\n", " "))
			_ = out.Flush()
			return err
		}
		fmt.Fprintln(out, reply)
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return lines.Err()
}

// childProc is the measuring process's handle on a child process.
type childProc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // of its stdout
	done  chan struct{} // closed once it has exited
	err   error         // why it exited; set before done is closed

	closeOnce sync.Once
}

// startChild starts this program with args (a helper flag first); name names it in errors.
func startChild(name string, args ...string) (*childProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start the %s: %w", name, err)
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
		return nil, fmt.Errorf("starting the %s: %w", name, err)
	}
	p := &childProc{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		lines := bufio.NewScanner(stdout)
		lines.Buffer(nil, 16<<20) // the clients' answers hold a delay per client
		for lines.Scan() {
			p.lines <- lines.Text()
		}
		err := cmd.Wait() // all of stdout is read: now Wait may close it
		if err == nil {
			err = errors.New("it ended")
		}
		p.err = fmt.Errorf("the %s process: %w", name, err)
		close(p.done)
	}()
	return p, nil
}

func (p *childProc) pid() int { return p.cmd.Process.Pid }

// receive returns the next line the child writes, or an error for an errorReply.
func (p *childProc) receive(ctx context.Context) (string, error) {
	select {
	case line := <-p.lines:
		if msg, failed := strings.CutPrefix(line, errorReply); failed {
			return "", fmt.Errorf("the %s: %s", p.name, msg)
		}
		return line, nil
	case <-p.done:
		return "", p.err
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the %s: %w", p.name, context.Cause(ctx))
	}
}

// ask sends a command line and returns the answer.
func (p *childProc) ask(ctx context.Context, command string) (string, error) {
	if _, err := io.WriteString(p.stdin, command+"\n"); err != nil {
		select {
		case <-p.done:
			return "", p.err
		default:
			return "", fmt.Errorf("writing to the %s: %w", p.name, err)
		}
	}
	return p.receive(ctx)
}

// close ends the child: its stdin closes, and it is killed if it has not exited within grace.
func (p *childProc) close(grace time.Duration) {
	p.closeOnce.Do(func() {
		_ = p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}
