// Package proc starts, finds and stops the lab's long-running processes. Each process runs in
// its own session (detached from the terminal that ran `lab up`), writes its output to
// <dir>/logs/<name>.log and its pid to <dir>/pids/<name>.pid.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec describes one process.
type Spec struct {
	Name string
	Path string
	Args []string
	Env  []string
}

// Manager runs processes for one lab directory.
type Manager struct {
	Dir string
}

func (m Manager) pidFile(name string) string { return filepath.Join(m.Dir, "pids", name+".pid") }

// LogFile is where a process's output goes.
func (m Manager) LogFile(name string) string { return filepath.Join(m.Dir, "logs", name+".log") }

// Pid returns the pid of a running process, or 0.
func (m Manager) Pid(name string) int {
	data, err := os.ReadFile(m.pidFile(name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !alive(pid) {
		return 0
	}
	return pid
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie (exited, not reaped) is not running.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat))
	return len(fields) < 3 || fields[2] != "Z"
}

// Start launches the process unless it is already running. It returns its pid.
func (m Manager) Start(s Spec) (int, error) {
	if pid := m.Pid(s.Name); pid != 0 {
		return pid, nil
	}
	for _, d := range []string{"pids", "logs"} {
		if err := os.MkdirAll(filepath.Join(m.Dir, d), 0o755); err != nil {
			return 0, err
		}
	}
	log, err := os.OpenFile(m.LogFile(s.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	fmt.Fprintf(log, "\n=== %s: starting %s %s\n", time.Now().UTC().Format(time.RFC3339), s.Path, strings.Join(s.Args, " "))
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Name, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(m.pidFile(s.Name), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return pid, err
	}
	// Reap the child if it exits while `lab up` still runs; afterwards init adopts it.
	go func() { _ = cmd.Wait() }()
	return pid, nil
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL. Stopping a stopped process is fine.
func (m Manager) Stop(name string, grace time.Duration) error {
	pid := m.Pid(name)
	defer os.Remove(m.pidFile(name))
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Kill stops a process at once with SIGKILL (a crash, for failure injection).
func (m Manager) Kill(name string) error {
	pid := m.Pid(name)
	if pid == 0 {
		return fmt.Errorf("%s is not running", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	for i := 0; i < 200 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// TailLog returns the last n lines of a process's log (for error messages).
func (m Manager) TailLog(name string, n int) string {
	data, err := os.ReadFile(m.LogFile(name))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RSSKiB returns a process's resident memory in KiB (0 if unknown).
func RSSKiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}

// StartTime returns when a process started (zero if unknown), from /proc/PID/stat and the
// boot time in /proc/stat.
func StartTime(pid int) time.Time {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}
	}
	// The command name (field 2) may hold spaces: count fields after its closing parenthesis.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Time{}
	}
	sys, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(sys), "\n") {
		if strings.HasPrefix(line, "btime ") {
			boot, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "btime ")), 10, 64)
			if err != nil {
				return time.Time{}
			}
			// USER_HZ is 100 on Linux.
			return time.Unix(boot, 0).Add(time.Duration(ticks) * 10 * time.Millisecond)
		}
	}
	return time.Time{}
}

// KillChildren kills (SIGKILL) every process whose parent is pid, and returns how many.
func KillChildren(pid int) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: the command may hold spaces and parentheses.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		if err := syscall.Kill(child, syscall.SIGKILL); err == nil {
			killed++
		}
	}
	return killed, nil
}
