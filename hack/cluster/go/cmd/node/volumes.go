package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// env resolves a container's environment the way kubelet does: image env, then envFrom, then
// env (with $(VAR) expansion and valueFrom), plus the in-cluster API server variables.
func (c *container) env(ctx context.Context) (map[string]string, error) {
	w := c.w
	p := w.current()
	env := map[string]string{
		"PATH":     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME": p.Name,
		"HOME":     "/root",
	}
	for k, v := range c.image.Env {
		env[k] = v
	}
	h, port := w.n.cfg.apiserverHost, w.n.cfg.apiserverPort
	env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"] = h, port
	env["KUBERNETES_SERVICE_PORT_HTTPS"] = port
	env["KUBERNETES_PORT"] = "tcp://" + h + ":" + port
	env["KUBERNETES_PORT_"+port+"_TCP"] = "tcp://" + h + ":" + port
	env["KUBERNETES_PORT_"+port+"_TCP_PROTO"], env["KUBERNETES_PORT_"+port+"_TCP_PORT"] = "tcp", port
	env["KUBERNETES_PORT_"+port+"_TCP_ADDR"] = h

	for _, ef := range c.spec.EnvFrom {
		var data map[string]string
		var err error
		switch {
		case ef.ConfigMapRef != nil:
			data, err = w.configMapData(ctx, ef.ConfigMapRef.Name, ptr.Deref(ef.ConfigMapRef.Optional, false))
		case ef.SecretRef != nil:
			data, err = w.secretData(ctx, ef.SecretRef.Name, ptr.Deref(ef.SecretRef.Optional, false))
		}
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.spec.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expandVars(e.Value, env)
			continue
		}
		v, err := w.valueFrom(ctx, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if v != nil {
			env[e.Name] = *v
		}
	}
	return env, nil
}

// keyValue picks one key of a Secret's or ConfigMap's data for an env var; a missing key is an
// error unless the reference is optional (then the variable is left unset).
func keyValue(data map[string]string, err error, key string, optional bool, kind, name string) (*string, error) {
	if err != nil {
		return nil, err
	}
	if v, ok := data[key]; ok {
		return &v, nil
	}
	if optional {
		return nil, nil
	}
	return nil, fmt.Errorf("key %q not found in %s %s", key, kind, name)
}

func (w *podWorker) valueFrom(ctx context.Context, vf *corev1.EnvVarSource) (*string, error) {
	switch {
	case vf.FieldRef != nil:
		v, err := w.fieldRef(vf.FieldRef.FieldPath)
		return &v, err
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		optional := ptr.Deref(r.Optional, false)
		data, err := w.secretData(ctx, r.Name, optional)
		return keyValue(data, err, r.Key, optional, "secret", r.Name)
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		optional := ptr.Deref(r.Optional, false)
		data, err := w.configMapData(ctx, r.Name, optional)
		return keyValue(data, err, r.Key, optional, "configmap", r.Name)
	case vf.ResourceFieldRef != nil:
		// No resource accounting here; report the node's generous capacity.
		v := "1"
		return &v, nil
	}
	return nil, fmt.Errorf("unsupported valueFrom")
}

func (w *podWorker) fieldRef(path string) (string, error) {
	w.mu.Lock()
	p, ip := w.pod, w.podIP
	w.mu.Unlock()
	switch path {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return string(p.UID), nil
	case "spec.nodeName":
		return p.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.podIP":
		return ip, nil
	case "status.podIPs":
		return ip, nil
	case "status.hostIP", "status.hostIPs":
		return w.n.cfg.bridgeIP, nil
	case "metadata.labels", "metadata.annotations":
		m := p.Labels
		if path == "metadata.annotations" {
			m = p.Annotations
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(m[k]))
		}
		return b.String(), nil
	}
	for _, pre := range []string{"metadata.labels['", "metadata.annotations['"} {
		if k, ok := strings.CutPrefix(path, pre); ok {
			k = strings.TrimSuffix(k, "']")
			if pre[9] == 'l' {
				return p.Labels[k], nil
			}
			return p.Annotations[k], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

func (w *podWorker) configMapData(ctx context.Context, name string, optional bool) (map[string]string, error) {
	cm, err := w.n.client.CoreV1().ConfigMaps(w.current().Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configmap %q: %w", name, err)
	}
	out := map[string]string{}
	for k, v := range cm.Data {
		out[k] = v
	}
	for k, v := range cm.BinaryData {
		out[k] = string(v)
	}
	return out, nil
}

func (w *podWorker) secretData(ctx context.Context, name string, optional bool) (map[string]string, error) {
	s, err := w.n.client.CoreV1().Secrets(w.current().Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out, nil
}

// volumes writes every pod volume under <pod dir>/volumes/<name> and returns name → host dir.
// Service-account tokens are refreshed by refreshTokens while the pod runs.
func (w *podWorker) volumes(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range w.current().Spec.Volumes {
		dir := filepath.Join(w.dir, "volumes", v.Name)
		if v.HostPath != nil {
			out[v.Name] = v.HostPath.Path
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		out[v.Name] = dir
		var files map[string]fileContent
		var err error
		switch {
		case v.EmptyDir != nil:
			continue
		case v.ConfigMap != nil:
			files, err = w.keyFiles(ctx, "configmap", v.ConfigMap.Name, v.ConfigMap.Items, ptr.Deref(v.ConfigMap.Optional, false), v.ConfigMap.DefaultMode)
		case v.Secret != nil:
			files, err = w.keyFiles(ctx, "secret", v.Secret.SecretName, v.Secret.Items, ptr.Deref(v.Secret.Optional, false), v.Secret.DefaultMode)
		case v.DownwardAPI != nil:
			files, err = w.downwardFiles(v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
		case v.Projected != nil:
			files, err = w.projectedFiles(ctx, v.Projected)
		default:
			return nil, fmt.Errorf("volume %q: type not supported by the process node (supported: emptyDir, configMap, secret, downwardAPI, projected, hostPath)", v.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		if err := writeFiles(dir, files); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type fileContent struct {
	data []byte
	mode os.FileMode
}

func modeOr(m *int32, def os.FileMode) os.FileMode {
	if m != nil {
		return os.FileMode(*m)
	}
	return def
}

func (w *podWorker) keyFiles(ctx context.Context, kind, name string, items []corev1.KeyToPath, optional bool, defMode *int32) (map[string]fileContent, error) {
	var data map[string]string
	var err error
	if kind == "secret" {
		data, err = w.secretData(ctx, name, optional)
	} else {
		data, err = w.configMapData(ctx, name, optional)
	}
	if err != nil {
		return nil, err
	}
	mode := modeOr(defMode, 0o644)
	files := map[string]fileContent{}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = fileContent{[]byte(v), mode}
		}
		return files, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s %s has no key %q", kind, name, it.Key)
		}
		files[it.Path] = fileContent{[]byte(v), modeOr(it.Mode, mode)}
	}
	return files, nil
}

func (w *podWorker) downwardFiles(items []corev1.DownwardAPIVolumeFile, defMode *int32) (map[string]fileContent, error) {
	files := map[string]fileContent{}
	for _, it := range items {
		v := "1"
		if it.FieldRef != nil {
			var err error
			if v, err = w.fieldRef(it.FieldRef.FieldPath); err != nil {
				return nil, err
			}
		}
		files[it.Path] = fileContent{[]byte(v), modeOr(it.Mode, modeOr(defMode, 0o644))}
	}
	return files, nil
}

func (w *podWorker) projectedFiles(ctx context.Context, pv *corev1.ProjectedVolumeSource) (map[string]fileContent, error) {
	files := map[string]fileContent{}
	merge := func(m map[string]fileContent, err error) error {
		for k, v := range m {
			files[k] = v
		}
		return err
	}
	for _, s := range pv.Sources {
		var err error
		switch {
		case s.ServiceAccountToken != nil:
			var tok string
			tok, err = w.token(ctx, s.ServiceAccountToken)
			files[s.ServiceAccountToken.Path] = fileContent{[]byte(tok), modeOr(pv.DefaultMode, 0o644)}
		case s.ConfigMap != nil:
			err = merge(w.keyFiles(ctx, "configmap", s.ConfigMap.Name, s.ConfigMap.Items, ptr.Deref(s.ConfigMap.Optional, false), pv.DefaultMode))
		case s.Secret != nil:
			err = merge(w.keyFiles(ctx, "secret", s.Secret.Name, s.Secret.Items, ptr.Deref(s.Secret.Optional, false), pv.DefaultMode))
		case s.DownwardAPI != nil:
			err = merge(w.downwardFiles(s.DownwardAPI.Items, pv.DefaultMode))
		default:
			err = fmt.Errorf("projected source not supported by the process node")
		}
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// token asks the TokenRequest API for a pod-bound service-account token, exactly what kubelet
// mounts at /var/run/secrets/kubernetes.io/serviceaccount/token.
func (w *podWorker) token(ctx context.Context, src *corev1.ServiceAccountTokenProjection) (string, error) {
	p := w.current()
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(ptr.Deref(src.ExpirationSeconds, 3600)),
		BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := w.n.client.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %s: %w", sa, err)
	}
	return tr.Status.Token, nil
}

// writeFiles replaces a volume's content atomically per file (write temp, rename), so a
// running container never reads a half-written token or certificate.
func writeFiles(dir string, files map[string]fileContent) error {
	for rel, f := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, f.data, f.mode.Perm()); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return nil
}

// refreshLoop rewrites projected/configMap/secret volumes periodically, as kubelet does, so
// tokens never expire under a running pod and updated ConfigMaps/Secrets show up.
func (w *podWorker) refreshLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.killCh:
			return
		case <-t.C:
			if _, err := w.volumes(ctx); err != nil {
				// Keep the old content; report nothing new (kubelet behaves the same).
				continue
			}
		}
	}
}
