package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// podWorker owns one pod for its whole life on this node: sandbox (netns + IP), volumes,
// containers, probes, and the status it reports. One goroutine drives it; container
// supervisors and probers report back through kick().
type podWorker struct {
	n   *node
	key string // ns/name, for logs

	mu         sync.Mutex
	pod        *corev1.Pod
	net        *podNet
	podIP      string
	dir        string
	inits      []*container
	containers []*container
	initsDone  bool
	phase      corev1.PodPhase
	reason     string
	message    string
	startTime  metav1.Time
	lastSent   *corev1.PodStatus
	undoAddrs  func() // removes claimed Gateway addresses

	kickCh chan struct{}
	killCh chan struct{}
	doneCh chan struct{} // closed when the worker has finished (ends statusLoop)
	killMu sync.Once
	// deleting is set when the API object is being deleted (vs. node shutdown).
	deleting bool
}

func newPodWorker(n *node, p *corev1.Pod) *podWorker {
	return &podWorker{n: n, pod: p, key: p.Namespace + "/" + p.Name, phase: corev1.PodPending,
		dir:    filepath.Join(n.cfg.stateDir, "pods", string(p.UID)),
		kickCh: make(chan struct{}, 1), killCh: make(chan struct{}), doneCh: make(chan struct{}), startTime: metav1.Now()}
}

func (w *podWorker) kick() {
	select {
	case w.kickCh <- struct{}{}:
	default:
	}
}

func (w *podWorker) update(p *corev1.Pod) {
	w.mu.Lock()
	w.pod = p
	w.mu.Unlock()
	if p.DeletionTimestamp != nil {
		w.mu.Lock()
		w.deleting = true
		w.mu.Unlock()
		w.kill()
	}
}

// current is the latest pod object the informer delivered.
func (w *podWorker) current() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *podWorker) kill() { w.killMu.Do(func() { close(w.killCh) }) }

func (w *podWorker) killed() bool {
	select {
	case <-w.killCh:
		return true
	default:
		return false
	}
}

func (w *podWorker) run(ctx context.Context) {
	klog.Infof("pod %s: starting", w.key)
	if w.current().DeletionTimestamp != nil {
		w.update(w.current())
	}
	defer close(w.doneCh)
	go w.statusLoop(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !w.killed() && w.prepare(ctx) {
			w.runContainers(ctx)
		}
	}()
	<-w.killCh
	grace := w.gracePeriod()
	if ctx.Err() != nil {
		// Node shutdown (cluster:down): the cluster is going away, don't wait out 30 s graces.
		grace = min(grace, 3*time.Second)
	}
	w.stopContainers(grace)
	// A supervisor may have been mid-start when the kill came; keep stopping until all are out.
	for stopped := false; !stopped; {
		select {
		case <-done:
			stopped = true
		case <-time.After(time.Second):
			w.stopContainers(0)
		}
	}
	w.releaseSandbox()
	_ = os.RemoveAll(w.dir)
	w.mu.Lock()
	deleting := w.deleting
	w.mu.Unlock()
	if deleting && ctx.Err() == nil {
		w.n.finalDelete(context.Background(), w.current())
	}
	klog.Infof("pod %s: stopped and cleaned up", w.key)
}

// prepare resolves images, creates the sandbox and materialises volumes and container specs.
// On an error the pod stays Pending with the reason in its container statuses (as kubelet
// reports it), and the step is retried until it works or the pod is deleted.
func (w *podWorker) prepare(ctx context.Context) bool {
	p := w.current()
	mk := func(cs []corev1.Container, init bool) []*container {
		var out []*container
		for _, c := range cs {
			out = append(out, newContainer(w, c, init))
		}
		return out
	}
	w.mu.Lock()
	w.inits = mk(p.Spec.InitContainers, true)
	w.containers = mk(p.Spec.Containers, false)
	w.mu.Unlock()

	missing := false
	for _, c := range w.all() {
		img, ok := w.n.images.lookup(c.spec.Image)
		if !ok {
			missing = true
			msg := fmt.Sprintf("image %q has no local command in the process node's image table (hack/cluster/images.json, or a file in $RAUTA_NODE_IMAGES)", c.spec.Image)
			c.setWaiting("ErrImagePull", msg)
			w.n.events.Event(p, corev1.EventTypeWarning, "Failed", msg)
			continue
		}
		c.mu.Lock()
		c.image = img
		c.mu.Unlock()
	}
	w.kick()
	if missing {
		klog.Warningf("pod %s: unknown image; staying Pending", w.key)
		return false
	}

	for backoff := time.Second; ; backoff = min(backoff*2, 20*time.Second) {
		err := w.createSandbox(p)
		if err == nil {
			break
		}
		klog.Warningf("pod %s: sandbox: %v", w.key, err)
		w.n.events.Eventf(p, corev1.EventTypeWarning, "FailedCreatePodSandBox", "%v", err)
		w.setAllWaiting("CreatePodSandboxError", err.Error())
		select {
		case <-w.killCh:
			return false
		case <-time.After(backoff):
		}
	}
	w.setAllWaiting("ContainerCreating", "")

	for backoff := time.Second; ; backoff = min(backoff*2, 20*time.Second) {
		err := w.materialize(ctx)
		if err == nil {
			return true
		}
		klog.Warningf("pod %s: %v", w.key, err)
		w.setAllWaiting("CreateContainerConfigError", err.Error())
		w.n.events.Eventf(p, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		select {
		case <-w.killCh:
			return false
		case <-time.After(backoff):
		}
	}
}

// createSandbox gives the pod its network: a namespace, an IP and any claimed Gateway
// addresses (hostNetwork pods: the node's IP). Undone completely on error.
func (w *podWorker) createSandbox(p *corev1.Pod) error {
	var pn *podNet
	podIP := w.n.cfg.bridgeIP
	if !p.Spec.HostNetwork {
		ip, err := w.n.allocIP(p.UID)
		if err != nil {
			return err
		}
		n := newPodNet(w.n.cfg, string(p.UID), ip)
		if err := n.setup(w.n.cfg); err != nil {
			w.n.releaseIP(ip)
			return err
		}
		pn, podIP = &n, ip.String()
	}
	undo, err := func() (func(), error) {
		addrs, err := gatewayAddresses(w.n.cfg, p)
		if err != nil {
			return nil, err
		}
		return addGatewayAddresses(w.n.cfg, pn, addrs)
	}()
	if err != nil {
		if pn != nil {
			pn.teardown()
			w.n.releaseIP(pn.ip)
		}
		return err
	}
	w.mu.Lock()
	w.net, w.podIP, w.undoAddrs = pn, podIP, undo
	w.mu.Unlock()
	return nil
}

func (w *podWorker) materialize(ctx context.Context) error {
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return err
	}
	vols, err := w.volumes(ctx)
	if err != nil {
		return err
	}
	for _, c := range w.all() {
		if err := c.build(ctx, vols); err != nil {
			return fmt.Errorf("container %s: %w", c.spec.Name, err)
		}
	}
	return nil
}

func (w *podWorker) all() []*container {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append(append([]*container{}, w.inits...), w.containers...)
}

func (w *podWorker) setAllWaiting(reason, msg string) {
	for _, c := range w.all() {
		c.setWaiting(reason, msg)
	}
	w.kick()
}

func (w *podWorker) runContainers(ctx context.Context) {
	go w.refreshLoop(ctx)
	for _, c := range w.inits {
		for {
			code, ok := c.runToCompletion(ctx)
			if !ok {
				return // killed
			}
			if code == 0 {
				break
			}
			if w.current().Spec.RestartPolicy == corev1.RestartPolicyNever {
				w.mu.Lock()
				w.phase, w.reason = corev1.PodFailed, "InitContainerFailed"
				w.mu.Unlock()
				w.kick()
				return
			}
			if !c.backoff() {
				return
			}
		}
	}
	w.mu.Lock()
	w.initsDone = true
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range w.containers {
		wg.Add(1)
		go func() { defer wg.Done(); c.supervise(ctx) }()
	}
	wg.Wait()
	// Every container is terminated for good (restartPolicy allowed no more restarts).
	w.mu.Lock()
	if !w.killed() {
		w.phase = corev1.PodSucceeded
		for _, c := range w.containers {
			if c.term != nil && c.term.ExitCode != 0 {
				w.phase = corev1.PodFailed
			}
		}
	}
	w.mu.Unlock()
	w.kick()
	// Terminal pods release their sandbox; the worker waits for deletion.
	w.releaseSandbox()
}

func (w *podWorker) gracePeriod() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	grace := int64(30)
	if w.pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *w.pod.Spec.TerminationGracePeriodSeconds
	}
	if w.pod.DeletionGracePeriodSeconds != nil {
		grace = *w.pod.DeletionGracePeriodSeconds
	}
	return time.Duration(grace) * time.Second
}

// stopContainers terminates every process: SIGTERM, then SIGKILL after grace.
func (w *podWorker) stopContainers(grace time.Duration) {
	var wg sync.WaitGroup
	for _, c := range w.all() {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(grace) }()
	}
	wg.Wait()
}

func (w *podWorker) releaseSandbox() {
	w.mu.Lock()
	pn, undo := w.net, w.undoAddrs
	w.net, w.undoAddrs = nil, nil
	w.mu.Unlock()
	if undo != nil {
		undo()
	}
	if pn != nil {
		pn.teardown()
		w.n.releaseIP(pn.ip)
	}
}

// statusLoop pushes the pod's status whenever it changes (debounced by the kick channel) and
// re-checks periodically, so a failed write is retried.
func (w *podWorker) statusLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.doneCh:
			return
		case <-w.kickCh:
		case <-t.C:
		}
		if w.killed() {
			w.mu.Lock()
			deleting := w.deleting
			w.mu.Unlock()
			if deleting {
				// The object is going away; statuses now would only race the final delete.
				continue
			}
		}
		w.syncStatus(ctx)
	}
}

func (w *podWorker) syncStatus(ctx context.Context) {
	st := w.buildStatus()
	w.mu.Lock()
	same := w.lastSent != nil && equality.Semantic.DeepEqual(*w.lastSent, st)
	p := w.pod
	w.mu.Unlock()
	if same {
		return
	}
	body, _ := json.Marshal(map[string]any{"status": st})
	_, err := w.n.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, body,
		metav1.PatchOptions{}, "status")
	if err != nil {
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			klog.Warningf("pod %s: status: %v", w.key, err)
		}
		return
	}
	w.mu.Lock()
	w.lastSent = &st
	w.mu.Unlock()
}

func (w *podWorker) buildStatus() corev1.PodStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pod
	st := corev1.PodStatus{Phase: w.phase, Reason: w.reason, Message: w.message, StartTime: &w.startTime,
		HostIP: w.n.cfg.bridgeIP, HostIPs: []corev1.HostIP{{IP: w.n.cfg.bridgeIP}}, QOSClass: p.Status.QOSClass}
	if w.podIP != "" {
		st.PodIP, st.PodIPs = w.podIP, []corev1.PodIP{{IP: w.podIP}}
	}
	allReady, anyRunning, allStarted := len(w.containers) > 0, false, true
	for _, c := range w.containers {
		cs := c.status()
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		allReady = allReady && cs.Ready
		anyRunning = anyRunning || cs.State.Running != nil
		allStarted = allStarted && cs.State.Running != nil
	}
	for _, c := range w.inits {
		st.InitContainerStatuses = append(st.InitContainerStatuses, c.status())
	}
	if st.Phase == corev1.PodPending && w.initsDone && (anyRunning || allStarted) {
		st.Phase = corev1.PodRunning
	}
	if st.Phase == corev1.PodRunning && !anyRunning {
		// Between restarts everything may be down for a moment; kubelet still reports Running.
		st.Phase = corev1.PodRunning
	}
	// Preserve conditions the node does not own (e.g. readiness gates) and their times.
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s, reason = corev1.ConditionTrue, ""
		}
		c := corev1.PodCondition{Type: t, Status: s, Reason: reason, LastTransitionTime: metav1.Now()}
		for _, old := range p.Status.Conditions {
			if old.Type == t && old.Status == s {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		if w.lastSent != nil {
			for _, old := range w.lastSent.Conditions {
				if old.Type == t && old.Status == s {
					c.LastTransitionTime = old.LastTransitionTime
				}
			}
		}
		return c
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	ready := allReady && !terminal
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, w.net != nil || (p.Spec.HostNetwork && w.podIP != ""), ""),
		cond(corev1.PodInitialized, w.initsDone, "ContainersNotInitialized"),
		cond(corev1.ContainersReady, ready, "ContainersNotReady"),
		cond(corev1.PodReady, ready, "ContainersNotReady"),
		cond(corev1.PodScheduled, true, ""),
	}
	for _, old := range p.Status.Conditions {
		switch old.Type {
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled:
		default:
			st.Conditions = append(st.Conditions, old)
		}
	}
	return st
}
