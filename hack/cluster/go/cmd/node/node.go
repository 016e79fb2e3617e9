package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const heartbeat = 10 * time.Second

type node struct {
	cfg    config
	client kubernetes.Interface
	images *imageTable
	self   string // this executable, re-run as container-init
	// events make `kubectl describe pod` useful: Started, Killing, Unhealthy, BackOff, Failed.
	events record.EventRecorder

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	ips     map[netip.Addr]types.UID
	// lastIP is the last host octet handed out; allocation continues after it (as CNI host-local
	// does) so a just-freed IP is not given straight to the next pod while neighbours still cache
	// the old pod's MAC for it.
	lastIP int
	wg     sync.WaitGroup
}

func newNode(c config, client kubernetes.Interface) (*node, error) {
	images, err := loadImages(c.imageFiles)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	rec := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: c.nodeName})
	return &node{cfg: c, client: client, images: images, self: self, events: rec,
		workers: map[types.UID]*podWorker{}, ips: map[netip.Addr]types.UID{}}, nil
}

func (n *node) run(ctx context.Context) error {
	// A previous incarnation's pods cannot be adopted (their processes died with it or are
	// orphans): start clean so IPs, links and volumes are ours. Its pods get restarted.
	cleanupStalePods(n.cfg.stateDir)
	cleanupStaleNetns(n.cfg)
	if err := os.MkdirAll(n.cfg.stateDir+"/pods", 0o755); err != nil {
		return err
	}
	if n.cfg.clientCAFile != "" {
		if err := serveKubeletAPI(ctx, n.cfg); err != nil {
			return fmt.Errorf("kubelet API: %w", err)
		}
	}
	if err := n.register(ctx); err != nil {
		return fmt.Errorf("registering node: %w", err)
	}
	go n.heartbeatLoop(ctx)
	if n.cfg.programServices {
		go newServiceProxy(n.cfg, n.client).run(ctx)
	}

	factory := informers.NewSharedInformerFactoryWithOptions(n.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", n.cfg.nodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { n.podChanged(ctx, o.(*corev1.Pod)) },
		UpdateFunc: func(_, o any) { n.podChanged(ctx, o.(*corev1.Pod)) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				n.podGone(p.UID)
			}
		},
	})
	factory.Start(ctx.Done())
	klog.Infof("node %s running; bridge %s (%s), pods from %s", n.cfg.nodeName, n.cfg.bridge, n.cfg.bridgeIP, n.cfg.podCIDR)
	<-ctx.Done()

	// Shutdown (cluster:down): stop every pod's processes and remove its namespace, so nothing
	// we started outlives us.
	klog.Info("shutting down: stopping all pods")
	n.mu.Lock()
	for _, w := range n.workers {
		w.kill()
	}
	n.mu.Unlock()
	n.wg.Wait()
	return nil
}

func (n *node) podChanged(ctx context.Context, p *corev1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w, ok := n.workers[p.UID]; ok {
		w.update(p)
		return
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		if p.DeletionTimestamp != nil {
			// Terminal and being deleted: nothing runs, just confirm.
			go n.finalDelete(ctx, p)
		}
		return
	}
	w := newPodWorker(n, p)
	n.workers[p.UID] = w
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		w.run(ctx)
		n.mu.Lock()
		delete(n.workers, p.UID)
		n.mu.Unlock()
	}()
}

func (n *node) podGone(uid types.UID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w, ok := n.workers[uid]; ok {
		w.kill()
	}
}

func (n *node) finalDelete(ctx context.Context, p *corev1.Pod) {
	err := n.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: metav1.NewUIDPreconditions(string(p.UID))})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		klog.Warningf("final delete of %s/%s: %v", p.Namespace, p.Name, err)
	}
}

func (n *node) allocIP(uid types.UID) (netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	base := netip.MustParsePrefix(n.cfg.podCIDR).Masked().Addr().As4()
	size := n.cfg.ipLast - n.cfg.ipFirst + 1
	start := max(n.lastIP+1-n.cfg.ipFirst, 0)
	for k := range size {
		i := n.cfg.ipFirst + (start+k)%size
		a := base
		a[3] = byte(i)
		ip := netip.AddrFrom4(a)
		if _, used := n.ips[ip]; !used {
			n.ips[ip] = uid
			n.lastIP = i
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("pod IP range %s .%d-.%d exhausted", n.cfg.podCIDR, n.cfg.ipFirst, n.cfg.ipLast)
}

func (n *node) releaseIP(ip netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.ips, ip)
}

func (n *node) nodeObject() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.cfg.nodeName, Labels: map[string]string{
			"kubernetes.io/hostname": n.cfg.nodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": runtime.GOARCH,
			"rauta.dev/process-node": "true",
		}},
	}
}

func (n *node) nodeStatus(now metav1.Time) corev1.NodeStatus {
	// Generous, fixed capacity: pods are processes sharing the host; requests are not enforced.
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("64Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "process node"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "process node"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "process node"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "process node is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.cfg.bridgeIP},
			{Type: corev1.NodeHostName, Address: n.cfg.nodeName},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(n.cfg.kubeletPort)}},
		NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: runtime.GOARCH,
			KubeletVersion: "rauta-process-node", ContainerRuntimeVersion: "process://local"},
	}
}

func (n *node) register(ctx context.Context) error {
	nodes := n.client.CoreV1().Nodes()
	_, err := nodes.Create(ctx, n.nodeObject(), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return n.postStatus(ctx)
}

func (n *node) postStatus(ctx context.Context) error {
	nodes := n.client.CoreV1().Nodes()
	cur, err := nodes.Get(ctx, n.cfg.nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	st := n.nodeStatus(now)
	// Keep transition times stable while the status does not change.
	for i, c := range st.Conditions {
		for _, old := range cur.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				st.Conditions[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	cur.Status = st
	_, err = nodes.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	return err
}

func (n *node) heartbeatLoop(ctx context.Context) {
	leases := n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, n.cfg.nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: n.cfg.nodeName, Namespace: corev1.NamespaceNodeLease},
				Spec:       coordv1.LeaseSpec{HolderIdentity: &n.cfg.nodeName, LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
			}, metav1.CreateOptions{})
		} else if err == nil {
			l.Spec.RenewTime = &now
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		if err != nil && ctx.Err() == nil {
			klog.Warningf("lease renew: %v", err)
		}
		if err := n.postStatus(ctx); err != nil && ctx.Err() == nil {
			klog.Warningf("node status: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
