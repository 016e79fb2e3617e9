package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// containerInit runs as the container's process, already inside its network namespace and a
// private mount namespace: it makes the bind mounts, then execs the real command in place so
// the PID the node supervises is the container's.
func containerInit(args []string) {
	if len(args) != 1 {
		initFail("usage: node container-init <spec.json>")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		initFail("%v", err)
	}
	var s initSpec
	if err := json.Unmarshal(b, &s); err != nil {
		initFail("%v", err)
	}
	// No mount event may leak back to the host, whatever propagation we inherited.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SLAVE, ""); err != nil {
		initFail("making / a slave mount: %v", err)
	}
	if s.Hostname != "" {
		if err := syscall.Sethostname([]byte(s.Hostname)); err != nil {
			initFail("sethostname: %v", err)
		}
	}
	path := s.Argv[0]
	if !strings.Contains(path, "/") {
		for _, e := range s.Env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				_ = os.Setenv("PATH", v)
			}
		}
		p, err := exec.LookPath(path)
		if err != nil {
			initFail("executable %q not found in PATH: %v", path, err)
		}
		path = p
	}
	exe := -1
	if filepath.IsAbs(path) {
		fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			initFail("executable %s: %v", path, err)
		}
		exe = fd
	}
	// Every source is opened before the first mount: a volume mounted over a directory that
	// holds other sources (a ConfigMap at /root hides the node's state under ~/.cache) would
	// otherwise make the later ones vanish. The kernel binds from the open file, not its path.
	type opened struct {
		initMount
		fd    int
		isDir bool
	}
	sources := make([]opened, 0, len(s.Mounts))
	for _, m := range s.Mounts {
		fd, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			initFail("mount source %s: %v", m.Source, err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			initFail("mount source %s: %v", m.Source, err)
		}
		sources = append(sources, opened{m, fd, st.Mode&syscall.S_IFMT == syscall.S_IFDIR})
	}
	for _, m := range sources {
		var err error
		// Mount points must exist; on a shared host filesystem creating one is the one trace a
		// pod leaves (an empty dir or file), which is harmless and reused next time.
		if m.isDir {
			err = os.MkdirAll(m.Target, 0o755)
		} else if _, e := os.Stat(m.Target); os.IsNotExist(e) {
			if err = os.MkdirAll(filepath.Dir(m.Target), 0o755); err == nil {
				var f *os.File
				if f, err = os.OpenFile(m.Target, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
					_ = f.Close()
				}
			}
		}
		if err != nil {
			initFail("mount point %s: %v", m.Target, err)
		}
		from := fmt.Sprintf("/proc/self/fd/%d", m.fd)
		if err := syscall.Mount(from, m.Target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			initFail("bind %s → %s: %v", m.Source, m.Target, err)
		}
		if m.ReadOnly {
			if err := syscall.Mount("", m.Target, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
				initFail("read-only %s: %v", m.Target, err)
			}
		}
	}
	if s.WorkingDir != "" {
		_ = os.MkdirAll(s.WorkingDir, 0o755)
		if err := os.Chdir(s.WorkingDir); err != nil {
			initFail("workingDir: %v", err)
		}
	}
	// exec the file opened before the mounts (a volume over its directory must not hide it);
	// a script's interpreter needs its path, so that is the fallback
	if exe >= 0 {
		_ = unix.Exec(fmt.Sprintf("/proc/self/fd/%d", exe), s.Argv, s.Env)
	}
	if err := syscall.Exec(path, s.Argv, s.Env); err != nil {
		initFail("exec %s: %v", path, err)
	}
}

func initFail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "process node container-init: "+format+"\n", a...)
	os.Exit(128)
}
