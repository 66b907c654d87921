package main

// CPU time of other processes, read from /proc: kube-apiserver's (started by envtest, a child of
// this process) and the xDS benchmark's clients process.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 a second on Linux
// whatever the kernel's own tick rate.
const clockTick = 10 * time.Millisecond

// procStat is what the xDS benchmark reads of /proc/<pid>/stat.
type procStat struct {
	comm string
	ppid int
	cpu  time.Duration // utime + stime, to the clock tick, exited threads included
}

// parseProcStat reads the content of /proc/<pid>/stat: "pid (comm) state ppid … utime stime …".
// comm may hold spaces and parentheses, so the fields are counted from the last ')'.
func parseProcStat(content string) (procStat, error) {
	open, closing := strings.IndexByte(content, '('), strings.LastIndexByte(content, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("malformed /proc stat %q", content)
	}
	// Fields after comm, from 3 (state): ppid is field 4, utime 14, stime 15.
	fields := strings.Fields(content[closing+1:])
	if len(fields) < 13 {
		return procStat{}, fmt.Errorf("malformed /proc stat: %d fields after comm", len(fields))
	}
	ppid, err1 := strconv.Atoi(fields[1])
	utime, err2 := strconv.ParseInt(fields[11], 10, 64)
	stime, err3 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return procStat{comm: content[open+1 : closing], ppid: ppid, cpu: time.Duration(utime+stime) * clockTick}, nil
}

// findChild returns the pid of the child of this process whose command is name (as the kernel
// keeps it: its first 15 bytes).
func findChild(name string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("reading /proc: %w", err)
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		content, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // the process ended meanwhile
		}
		st, err := parseProcStat(string(content))
		if err == nil && st.ppid == self && st.comm == name[:min(len(name), 15)] {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process %q started by this one (pid %d)", name, self)
}

// parseSchedstat reads the first field of /proc/<pid>/task/<tid>/schedstat: the thread's time
// on a CPU, in nanoseconds, user and system.
func parseSchedstat(content string) (time.Duration, error) {
	fields := strings.Fields(content)
	if len(fields) == 0 {
		return 0, errors.New("empty schedstat")
	}
	ns, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed schedstat %q: %w", content, err)
	}
	return time.Duration(ns), nil
}

// procCPU is the CPU time process pid has used, user and system: the sum of its threads' time
// on a CPU from their schedstat, in nanoseconds — /proc/<pid>/stat counts in 10 ms ticks, too
// coarse for a few hundred updates of a millisecond — or, where the kernel has no schedstat,
// utime+stime of /proc/<pid>/stat. A thread that exits takes its schedstat time with it: the Go
// programs measured here keep their threads.
func procCPU(pid int) (time.Duration, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("reading the threads of process %d: %w", pid, err)
	}
	var total time.Duration
	for _, t := range tasks {
		content, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if errors.Is(err, os.ErrNotExist) {
			if _, statErr := os.Stat(dir); statErr != nil {
				return 0, fmt.Errorf("process %d: %w", pid, statErr)
			}
			if t == tasks[0] { // no schedstat at all: the kernel lacks it
				return statCPU(pid)
			}
			continue // this thread ended meanwhile
		}
		if err != nil {
			return 0, err
		}
		ns, err := parseSchedstat(string(content))
		if err != nil {
			return 0, err
		}
		total += ns
	}
	return total, nil
}

// statCPU is utime+stime of /proc/<pid>/stat.
func statCPU(pid int) (time.Duration, error) {
	content, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	st, err := parseProcStat(string(content))
	return st.cpu, err
}

// procRSS is the resident memory of process pid, from VmRSS in /proc/<pid>/status.
func procRSS(pid int) (uint64, error) {
	content, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(string(content))
}

// parseVmRSS reads the line "VmRSS:	 123456 kB" of a /proc status file.
func parseVmRSS(content string) (uint64, error) {
	for _, line := range strings.Split(content, "\n") {
		value, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			break
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS in %q", content)
}
