package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// memUsage is the memory of a server: one process, or a process tree.
type memUsage struct {
	RSSKiB int64 // VmRSS, summed over the processes
	PSSKiB int64 // proportional set size (shared pages divided), summed
	Procs  int
}

// statusField reads a "Name:   123 kB" field of /proc/PID/status or
// smaps_rollup.
func procField(path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+":") {
			fs := strings.Fields(line[len(name)+1:])
			if len(fs) == 0 {
				break
			}
			return strconv.ParseInt(fs[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, name)
}

// stat returns the parent PID and CPU ticks (utime+stime+cutime+cstime)
// of pid.
func stat(pid int) (ppid int, ticks int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad stat for %d", pid)
	}
	fs := strings.Fields(string(b[i+1:]))
	// fs[0] state, fs[1] ppid, ... fs[11] utime fs[12] stime fs[13] cutime fs[14] cstime
	if len(fs) < 15 {
		return 0, 0, fmt.Errorf("short stat for %d", pid)
	}
	ppid, _ = strconv.Atoi(fs[1])
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(fs[k], 10, 64)
		ticks += v
	}
	return ppid, ticks, nil
}

// processTree returns pid and all its descendants.
func processTree(root int) []int {
	children := map[int][]int{}
	ents, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range ents {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		ppid, _, err := stat(pid)
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// measureMem sums VmRSS and Pss over root (and its descendants if tree).
func measureMem(root int, tree bool) memUsage {
	pids := []int{root}
	if tree {
		pids = processTree(root)
	}
	var m memUsage
	for _, pid := range pids {
		rss, err := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
		if err != nil {
			continue
		}
		pss, _ := procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")
		m.RSSKiB += rss
		m.PSSKiB += pss
		m.Procs++
	}
	return m
}

// cpuTicks sums the CPU ticks of root's tree (children that exited and were
// waited for are in their parent's cutime/cstime).
func cpuTicks(root int, tree bool) int64 {
	pids := []int{root}
	if tree {
		pids = processTree(root)
	}
	var t int64
	for _, pid := range pids {
		if _, v, err := stat(pid); err == nil {
			t += v
		}
	}
	return t
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// machineCPU returns the busy and total jiffies of all CPUs (/proc/stat).
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fs := strings.Fields(line)
	for i, f := range fs[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}
