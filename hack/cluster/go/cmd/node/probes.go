package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
)

var probeClient = &http.Client{
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true},
	// Kubelet does not follow redirects to other hosts; a 3xx already counts as success.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// probeLoop runs the startup, then liveness and readiness probes of one container run, with
// kubelet's semantics: thresholds, initial delay, period; liveness/startup failure restarts.
func (c *container) probeLoop(ctx context.Context) {
	s := c.spec
	if s.StartupProbe != nil {
		if !c.runProbe(ctx, s.StartupProbe, "startup", func(ok bool) {
			if ok {
				c.mu.Lock()
				c.started = true
				c.mu.Unlock()
				c.w.kick()
			}
		}) {
			return
		}
	}
	if s.ReadinessProbe == nil {
		c.mu.Lock()
		c.ready = c.running != nil
		c.mu.Unlock()
		c.w.kick()
	} else {
		go c.runProbe(ctx, s.ReadinessProbe, "readiness", func(ok bool) {
			c.mu.Lock()
			changed := c.ready != ok
			c.ready = ok
			c.mu.Unlock()
			if changed {
				c.w.kick()
			}
		})
	}
	if s.LivenessProbe != nil {
		go c.runProbe(ctx, s.LivenessProbe, "liveness", nil)
	}
}

// runProbe reports each threshold-crossing result to onResult. For startup probes it returns
// true once the probe succeeded; liveness and startup failures kill the process (the
// supervisor then restarts it per restartPolicy).
func (c *container) runProbe(ctx context.Context, p *corev1.Probe, kind string, onResult func(bool)) bool {
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	succT, failT := max(p.SuccessThreshold, 1), max(p.FailureThreshold, 1)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
	}
	var succ, fail int32
	for {
		err := c.probeOnce(ctx, p, timeout)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			succ, fail = succ+1, 0
			if succ >= succT && onResult != nil {
				onResult(true)
			}
			if kind == "startup" {
				return true
			}
		} else {
			succ, fail = 0, fail+1
			if fail >= failT {
				if onResult != nil {
					onResult(false)
				}
				c.w.n.events.Eventf(c.w.current(), corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", strings.ToUpper(kind[:1])+kind[1:], err)
				if kind == "liveness" || kind == "startup" {
					klog.Infof("pod %s container %s: %s probe failed %d times (%v); restarting", c.w.key, c.spec.Name, kind, fail, err)
					go c.stop(time.Duration(c.grace()) * time.Second)
					return false
				}
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(period):
		}
	}
}

func (c *container) grace() int64 {
	if g := c.w.current().Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return 30
}

func (c *container) resolvePort(p intstr.IntOrString) (string, error) {
	if p.Type == intstr.Int {
		return strconv.Itoa(p.IntValue()), nil
	}
	for _, cp := range c.spec.Ports {
		if cp.Name == p.StrVal {
			return strconv.Itoa(int(cp.ContainerPort)), nil
		}
	}
	return "", fmt.Errorf("named port %q not found", p.StrVal)
}

func (c *container) probeOnce(ctx context.Context, p *corev1.Probe, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.w.mu.Lock()
	host := c.w.podIP
	c.w.mu.Unlock()
	switch {
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := c.resolvePort(g.Port)
		if err != nil {
			return err
		}
		if g.Host != "" {
			host = g.Host
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+g.Path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "kube-probe/rauta-process-node")
		for _, h := range g.HTTPHeaders {
			if h.Name == "Host" {
				req.Host = h.Value
			} else {
				req.Header.Add(h.Name, h.Value)
			}
		}
		res, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		_ = res.Body.Close()
		if res.StatusCode < 200 || res.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe returned %d", res.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := c.resolvePort(p.TCPSocket.Port)
		if err != nil {
			return err
		}
		if p.TCPSocket.Host != "" {
			host = p.TCPSocket.Host
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, port))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.Exec != nil:
		c.mu.Lock()
		pid := 0
		if c.cmd != nil && c.cmd.Process != nil {
			pid = c.cmd.Process.Pid
		}
		c.mu.Unlock()
		if pid == 0 || len(p.Exec.Command) == 0 {
			return fmt.Errorf("exec probe: no process")
		}
		// Run the command in the container's mount and network namespaces.
		args := append([]string{"--target", strconv.Itoa(pid), "--mount", "--net", "--"}, p.Exec.Command...)
		out, err := exec.CommandContext(ctx, "nsenter", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("exec probe: %v: %s", err, out)
		}
		return nil
	case p.GRPC != nil:
		port := strconv.Itoa(int(p.GRPC.Port))
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, port))
		if err != nil {
			return err
		}
		// A TCP connect stands in for the gRPC health protocol (no gRPC client linked here).
		return conn.Close()
	}
	return fmt.Errorf("probe has no handler")
}
