package main

// The floor under the tier's cost per client: what a process spends to send one message to
// each of N clients over loopback TCP, with nothing else — no gRPC, no xDS, no goroutine per
// stream — and to read one short answer back from each, as the tier reads an ACK. The readers
// are another process, so that only the sender's CPU is counted (on loopback the sender's write
// also pays for the receiver's TCP processing, as the tier's writes do).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// xdsSinkFlag, as the first argument, runs the program as the loopback sink.
const xdsSinkFlag = "-xds-sink-process"

// floorResult is the sender's CPU time per client per message, over loopback TCP.
type floorResult struct {
	clients        int
	message, reply int           // bytes sent to each client, and read back from each
	rounds         int           // messages sent to each client, per measurement
	write          time.Duration // one write per client
	writeRead      time.Duration // one write and one read per client
}

// Messages to the sink: their first byte says whether it answers.
const (
	noReply   = 0
	wantReply = 1
)

// runSinkProcess connects -clients times to -addr and, on each connection, reads messages of
// -message bytes and answers those that ask for it with -reply bytes, until stdin ends.
func runSinkProcess(args []string) error {
	fs := flag.NewFlagSet("kuberegistry-bench "+xdsSinkFlag, flag.ContinueOnError)
	addr := fs.String("addr", "", "address to connect to")
	clients := fs.Int("clients", 1, "connections")
	message := fs.Int("message", 1, "bytes of a message")
	reply := fs.Int("reply", 1, "bytes of an answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *clients < 1 || *message < 1 || *reply < 1 {
		return errors.New("the sink needs -addr, and -clients, -message and -reply of at least 1")
	}
	var wg sync.WaitGroup
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close() // ends the readers
		}
		wg.Wait()
	}()
	for range *clients {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		wg.Go(func() {
			in, out := make([]byte, *message), make([]byte, *reply)
			for {
				if _, err := io.ReadFull(c, in); err != nil {
					return
				}
				if in[0] == wantReply {
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}
		})
	}
	fmt.Println(readyWord)
	_, err := io.Copy(io.Discard, os.Stdin)
	return err
}

// measureFloor measures the loopback floor for n clients: rounds messages of message bytes to
// each, written one client after another, first alone, then each round followed by reading
// reply bytes back from every client.
func measureFloor(ctx context.Context, n, message, reply, rounds int) (floorResult, error) {
	res := floorResult{clients: n, message: max(message, 1), reply: max(reply, 1), rounds: rounds}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer func() { _ = lis.Close() }()
	sink, err := startChild("loopback sink", xdsSinkFlag, "-addr", lis.Addr().String(), "-clients", strconv.Itoa(n),
		"-message", strconv.Itoa(res.message), "-reply", strconv.Itoa(res.reply))
	if err != nil {
		return res, err
	}
	defer sink.close(10 * time.Second)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range n {
		c, err := lis.Accept()
		if err != nil {
			return res, err
		}
		conns = append(conns, c)
	}
	if line, err := sink.receive(ctx); err != nil || line != readyWord {
		return res, fmt.Errorf("the loopback sink did not start: %q, %v", line, err)
	}
	send, answer := make([]byte, res.message), make([]byte, res.reply)
	round := func(kind byte) error {
		send[0] = kind
		for _, c := range conns {
			if _, err := c.Write(send); err != nil {
				return err
			}
		}
		if kind == noReply {
			return nil
		}
		for _, c := range conns {
			if _, err := io.ReadFull(c, answer); err != nil {
				return err
			}
		}
		return nil
	}
	for k, kind := range []byte{noReply, wantReply} {
		for range 20 { // warm up
			if err := round(kind); err != nil {
				return res, err
			}
		}
		if err := settle(ctx); err != nil {
			return res, err
		}
		before := cpuTime()
		for range rounds {
			if err := round(kind); err != nil {
				return res, err
			}
		}
		perClient := (cpuTime() - before) / time.Duration(rounds*n)
		if k == 0 {
			res.write = perClient
		} else {
			res.writeRead = perClient
		}
	}
	return res, nil
}
