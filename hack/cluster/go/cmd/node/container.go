package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// container is one process (re)started per restartPolicy.
type container struct {
	w     *podWorker
	spec  corev1.Container
	init  bool
	image imageEntry

	mu       sync.Mutex
	specFile string // container-init spec
	cmd      *exec.Cmd
	running  *corev1.ContainerStateRunning
	term     *corev1.ContainerStateTerminated // current state when not restarting
	lastTerm *corev1.ContainerStateTerminated
	waiting  *corev1.ContainerStateWaiting
	restarts int32
	ready    bool
	started  bool // startup probe passed (or none)
	exited   chan struct{}
	stopping bool
	backoffD time.Duration
}

func newContainer(w *podWorker, c corev1.Container, init bool) *container {
	return &container{w: w, spec: c, init: init, backoffD: time.Second,
		waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
}

func (c *container) setWaiting(reason, msg string) {
	c.mu.Lock()
	c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	c.mu.Unlock()
}

// initSpec is what container-init receives: the final argv/env and the bind mounts to make in
// the container's private mount namespace.
type initSpec struct {
	Argv       []string    `json:"argv"`
	Env        []string    `json:"env"`
	WorkingDir string      `json:"workingDir"`
	Mounts     []initMount `json:"mounts"`
	// Hostname is set in the container's own UTS namespace (pods not on the host network).
	Hostname string `json:"hostname,omitempty"`
}

type initMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

func (c *container) build(ctx context.Context, vols map[string]string) error {
	w := c.w
	env, err := c.env(ctx)
	if err != nil {
		return err
	}
	expand := func(s string) string { return expandVars(s, env) }
	var argv []string
	switch {
	case len(c.spec.Command) > 0:
		argv = append(mapStrings(c.spec.Command, expand), mapStrings(c.spec.Args, expand)...)
	case len(c.spec.Args) > 0:
		argv = append(append([]string{}, c.image.Entrypoint...), mapStrings(c.spec.Args, expand)...)
	default:
		argv = append(append([]string{}, c.image.Entrypoint...), c.image.Cmd...)
	}
	if len(argv) == 0 {
		return fmt.Errorf("no command: the image table entry for %q has no entrypoint and the pod sets none", c.spec.Image)
	}
	spec := initSpec{Argv: argv, WorkingDir: c.spec.WorkingDir}
	if p := w.current(); !p.Spec.HostNetwork {
		spec.Hostname = p.Name
		if p.Spec.Hostname != "" {
			spec.Hostname = p.Spec.Hostname
		}
	}
	if spec.WorkingDir == "" {
		spec.WorkingDir = c.image.WorkingDir
	}
	for k, v := range env {
		spec.Env = append(spec.Env, k+"="+v)
	}
	// Image-provided private dirs first, so volumes can mount inside them (e.g. /app/load).
	for target, links := range c.image.Dirs {
		src := filepath.Join(w.dir, "imagedirs", c.spec.Name, strings.ReplaceAll(strings.Trim(target, "/"), "/", "_"))
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		for name, to := range links {
			_ = os.Remove(filepath.Join(src, name))
			if err := os.Symlink(to, filepath.Join(src, name)); err != nil {
				return err
			}
		}
		spec.Mounts = append(spec.Mounts, initMount{Source: src, Target: target})
	}
	for target, src := range c.image.Binds {
		spec.Mounts = append(spec.Mounts, initMount{Source: src, Target: target, ReadOnly: true})
	}
	for _, m := range c.spec.VolumeMounts {
		src, ok := vols[m.Name]
		if !ok {
			return fmt.Errorf("volumeMount %q: no such volume", m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, expand(m.SubPath))
			if _, err := os.Stat(src); os.IsNotExist(err) {
				_ = os.MkdirAll(src, 0o755)
			}
		}
		spec.Mounts = append(spec.Mounts, initMount{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	b, _ := json.Marshal(spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.specFile = filepath.Join(w.dir, c.spec.Name+".json")
	return os.WriteFile(c.specFile, b, 0o600)
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

// start launches the process: inside the pod's netns via `ip netns exec` (which also gives it a
// private mount namespace), or, for hostNetwork pods, with only a new mount namespace.
func (c *container) start() error {
	w := c.w
	if w.killed() {
		return fmt.Errorf("pod is being stopped")
	}
	w.mu.Lock()
	pn := w.net
	w.mu.Unlock()
	c.mu.Lock()
	specFile := c.specFile
	c.mu.Unlock()
	var cmd *exec.Cmd
	if pn != nil {
		cmd = exec.Command("ip", "netns", "exec", pn.netns, w.n.self, "container-init", specFile)
		// Own UTS namespace so the pod's hostname is its name, as under kubelet.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWUTS}
	} else {
		cmd = exec.Command(w.n.self, "container-init", specFile)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWNS}
	}
	p := w.current()
	logDir := filepath.Join(w.n.cfg.logsDir, p.Namespace+"_"+p.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(logDir, c.spec.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- %s process node: starting %s (restart %d)\n", time.Now().Format(time.RFC3339), c.spec.Name, c.restarts)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	// pid + kernel start time: lets cluster:down kill an orphan without hitting a reused PID.
	_ = os.WriteFile(filepath.Join(w.dir, c.spec.Name+".pid"),
		[]byte(fmt.Sprintf("%d\nstarttime:%s\n", cmd.Process.Pid, procStartTime(cmd.Process.Pid))), 0o644)
	w.n.events.Eventf(p, corev1.EventTypeNormal, "Started", "Started container %s (pid %d)", c.spec.Name, cmd.Process.Pid)
	c.mu.Lock()
	c.cmd = cmd
	c.exited = make(chan struct{})
	c.running = &corev1.ContainerStateRunning{StartedAt: metav1.Now()}
	c.waiting, c.term = nil, nil
	c.ready = false
	c.started = c.spec.StartupProbe == nil
	c.mu.Unlock()
	return nil
}

func procStartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) > 19 {
		return f[19] // field 22 overall
	}
	return ""
}

// wait blocks until the process exits and records its termination.
func (c *container) wait() int32 {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	err := cmd.Wait()
	code := int32(0)
	reason := "Completed"
	if err != nil {
		code, reason = 1, "Error"
		if ee, ok := err.(*exec.ExitError); ok {
			if st, ok := ee.Sys().(syscall.WaitStatus); ok {
				if st.Signaled() {
					code = 128 + int32(st.Signal())
				} else {
					code = int32(st.ExitStatus())
				}
			}
		}
	}
	c.mu.Lock()
	started := metav1.Now()
	if c.running != nil {
		started = c.running.StartedAt
	}
	c.term = &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: metav1.Now(),
		ContainerID: c.containerID()}
	c.running, c.ready = nil, false
	c.mu.Unlock()
	close(exited)
	c.w.kick()
	return code
}

func (c *container) containerID() string {
	if c.cmd != nil && c.cmd.Process != nil {
		return fmt.Sprintf("process://%s/%d", c.w.n.cfg.nodeName, c.cmd.Process.Pid)
	}
	return ""
}

func (c *container) runToCompletion(ctx context.Context) (int32, bool) {
	if err := c.start(); err != nil {
		c.setWaiting("RunContainerError", err.Error())
		c.w.kick()
		return 1, !c.w.killed()
	}
	c.w.kick()
	code := c.wait()
	return code, !c.w.killed()
}

// supervise runs the container and restarts it per the pod's restartPolicy.
func (c *container) supervise(ctx context.Context) {
	policy := c.w.current().Spec.RestartPolicy
	for {
		if err := c.start(); err != nil {
			klog.Warningf("pod %s container %s: start: %v", c.w.key, c.spec.Name, err)
			c.setWaiting("RunContainerError", err.Error())
			c.w.kick()
			if !c.backoff() {
				return
			}
			continue
		}
		c.w.kick()
		probeCtx, stopProbes := context.WithCancel(ctx)
		go c.probeLoop(probeCtx)
		began := time.Now()
		code := c.wait()
		stopProbes()
		if c.w.killed() {
			return
		}
		klog.Infof("pod %s container %s exited with %d", c.w.key, c.spec.Name, code)
		if policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && code == 0) {
			return
		}
		if time.Since(began) > time.Minute {
			c.backoffD = time.Second
		}
		// the pod first: its lock is taken before a container's everywhere (status building
		// holds w.mu, then c.mu), so asking for it while holding c.mu deadlocked the pod
		pod := c.w.current()
		c.mu.Lock()
		c.lastTerm = c.term
		c.term = nil
		c.restarts++
		c.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container %s", c.backoffD, c.spec.Name)}
		c.mu.Unlock()
		c.w.n.events.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s (exit code %d)", c.spec.Name, code)
		c.w.kick()
		if !c.backoff() {
			return
		}
	}
}

// backoff sleeps the current restart delay (1 s doubling to 20 s; kubelet's 10 s–5 min would
// make tests slow); false if the pod was killed meanwhile.
func (c *container) backoff() bool {
	c.mu.Lock()
	d := c.backoffD
	c.backoffD = min(c.backoffD*2, 20*time.Second)
	c.mu.Unlock()
	select {
	case <-c.w.killCh:
		return false
	case <-time.After(d):
		return true
	}
}

// signal sends sig to the container's process group.
func (c *container) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil && c.cmd.Process != nil && c.running != nil {
		_ = syscall.Kill(-c.cmd.Process.Pid, sig)
	}
}

// stop: SIGTERM, up to grace, SIGKILL — the graceful termination kubelet does.
func (c *container) stop(grace time.Duration) {
	c.mu.Lock()
	exited := c.exited
	running := c.running != nil
	c.mu.Unlock()
	if !running || exited == nil {
		return
	}
	c.w.n.events.Eventf(c.w.current(), corev1.EventTypeNormal, "Killing", "Stopping container %s", c.spec.Name)
	c.signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(grace):
	}
	klog.Infof("pod %s container %s: grace period %s over, SIGKILL", c.w.key, c.spec.Name, grace)
	c.signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
	}
}

func (c *container) status() corev1.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := corev1.ContainerStatus{Name: c.spec.Name, Image: c.spec.Image, RestartCount: c.restarts,
		Ready: c.ready && c.running != nil, Started: ptrBool(c.running != nil && c.started),
		ImageID: "process://" + strings.Join(c.image.Entrypoint, " ")}
	switch {
	case c.running != nil:
		cs.State.Running = c.running
		cs.ContainerID = c.containerID()
	case c.waiting != nil:
		cs.State.Waiting = c.waiting
	case c.term != nil:
		cs.State.Terminated = c.term
		cs.ContainerID = c.term.ContainerID
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	if c.lastTerm != nil {
		cs.LastTerminationState.Terminated = c.lastTerm
	}
	if c.init && c.term != nil && c.term.ExitCode == 0 {
		cs.Ready = true
	}
	return cs
}

func ptrBool(b bool) *bool { return &b }

// expandVars implements Kubernetes' $(VAR) references ($$ escapes; unknown refs stay literal).
func expandVars(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if s[i+1] == '(' {
				if j := strings.IndexByte(s[i+2:], ')'); j >= 0 {
					name := s[i+2 : i+2+j]
					if v, ok := env[name]; ok {
						b.WriteString(v)
						i += j + 2
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
