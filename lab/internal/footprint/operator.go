package footprint

// The Tigera operator, for real. KWOK runs no containers, so the operator's pod (from
// tigera-operator.yaml) only looks Running; while it does, the lab runs the operator binary it
// built (lab/lab, build_operator) for that pod's image tag, as that pod would: the pod's
// arguments and environment, its ServiceAccount's token (so the manifest's RBAC applies), its
// namespace. When the pod stops running (the Deployment deleted, scaled to 0, the node gone),
// the process is stopped. The operator then does what it does anywhere: it reads the
// Installation, creates calico-system and its workloads, the IP pools, and reports each
// component in a TigeraStatus; KWOK runs calico-system's pods and this footprint plays their
// containers' effects, as for a manifest install.

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"grappe.dev/lab/internal/pki"
	"grappe.dev/lab/internal/proc"
)

const (
	operatorNamespace = "tigera-operator"
	// OperatorProcess is the lab process that runs the operator.
	OperatorProcess = "tigera-operator"
	// How long the operator's ServiceAccount token is valid; the process is restarted with a
	// fresh one before it expires.
	operatorTokenLifetime = 24 * time.Hour
	// Where a pod finds its ServiceAccount's token, CA and namespace.
	serviceAccountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// How long after a start an exited operator waits before it is started again.
	operatorBackoff = 10 * time.Second
)

// operatorPod is the Running operator pod and its operator container, if any.
func (c *Controller) operatorPod(ctx context.Context) (*corev1.Pod, *corev1.Container) {
	pods, err := c.client.CoreV1().Pods(operatorNamespace).List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=tigera-operator"})
	if err != nil {
		return nil, nil
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		for j := range p.Spec.Containers {
			if p.Spec.Containers[j].Name == "tigera-operator" {
				return p, &p.Spec.Containers[j]
			}
		}
	}
	return nil, nil
}

// imageTag is the tag of an image reference (`quay.io/tigera/operator:v1.42.3` -> `v1.42.3`).
func imageTag(image string) string {
	image = strings.SplitN(image, "@", 2)[0]
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return "latest"
}

// reconcileOperator runs the operator process while its pod runs, and stops it otherwise.
func (c *Controller) reconcileOperator(ctx context.Context) error {
	m := proc.Manager{Dir: c.cfg.Dir}
	pod, ctr := c.operatorPod(ctx)
	if pod == nil {
		if m.Pid(OperatorProcess) != 0 {
			log.Printf("footprint: the operator's pod no longer runs: stopping the operator")
			return m.Stop(OperatorProcess, 10*time.Second)
		}
		return nil
	}
	running := m.Pid(OperatorProcess) != 0
	c.mu.Lock()
	if running && c.operatorPodUID == "" {
		// A footprint restarted beside a running operator adopts it, renewing its token soon.
		c.operatorPodUID, c.operatorRenew = pod.UID, time.Now().Add(time.Hour)
	}
	same := c.operatorPodUID == pod.UID && time.Now().Before(c.operatorRenew)
	recent := time.Since(c.operatorStarted) < operatorBackoff
	c.mu.Unlock()
	if (running && same) || (!running && same && recent) {
		return nil
	}
	if running {
		// Another pod (a rollout of the Deployment) or a token to renew: start over.
		if err := m.Stop(OperatorProcess, 10*time.Second); err != nil {
			return err
		}
	}
	tag := imageTag(ctr.Image)
	binary := filepath.Join(c.cfg.BinDir, "tigera-operator-"+tag)
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("the operator's pod runs image %s, but the lab built no operator %s: %w", ctr.Image, tag, err)
	}
	dir, err := c.operatorServiceAccount(ctx, pod.Spec.ServiceAccountName)
	if err != nil {
		return err
	}
	env := []string{
		"KUBERNETES_SERVICE_HOST=127.0.0.1",
		fmt.Sprintf("KUBERNETES_SERVICE_PORT=%d", c.cfg.APIServerPort()),
		"POD_NAME=" + pod.Name,
	}
	env = append(env, c.cfg.GoEnv()...)
	for _, e := range ctr.Env {
		if e.ValueFrom == nil && !strings.HasPrefix(e.Name, "KUBERNETES_SERVICE_") {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	// In a mount namespace of its own, the pod's ServiceAccount volume at its usual path: the
	// operator finds its token, CA and namespace as in a pod (controller-runtime reads the
	// namespace there for its leader election).
	script := `mount --bind "$1" ` + serviceAccountPath + ` && shift && exec "$@"`
	args := append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", dir, binary}, ctr.Args...)
	c.mu.Lock()
	c.operatorStarted = time.Now()
	c.mu.Unlock()
	if _, err := m.Start(proc.Spec{Name: OperatorProcess, Path: "unshare", Args: args, Env: env}); err != nil {
		return err
	}
	c.mu.Lock()
	c.operatorPodUID = pod.UID
	c.operatorRenew = time.Now().Add(operatorTokenLifetime - time.Hour)
	c.mu.Unlock()
	log.Printf("footprint: the operator's pod %s runs: operator %s started (ServiceAccount %s)", pod.Name, tag, pod.Spec.ServiceAccountName)
	return nil
}

// operatorServiceAccount writes what the kubelet mounts into the operator's pod (a token of
// its ServiceAccount, the cluster's CA, the namespace) into a directory and returns it; the
// mount point exists on the host from then on (an empty directory outside the operator).
func (c *Controller) operatorServiceAccount(ctx context.Context, account string) (string, error) {
	if account == "" {
		account = "default"
	}
	seconds := int64(operatorTokenLifetime / time.Second)
	tr, err := c.client.CoreV1().ServiceAccounts(operatorNamespace).CreateToken(ctx, account,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token of ServiceAccount %s/%s: %w", operatorNamespace, account, err)
	}
	ca, err := os.ReadFile(pki.PathsIn(c.cfg.File("pki")).CACert)
	if err != nil {
		return "", err
	}
	dir := c.cfg.File("tigera-operator-serviceaccount")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for name, data := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": ca, "namespace": []byte(operatorNamespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(serviceAccountPath, 0o755); err != nil {
		return "", fmt.Errorf("the operator's ServiceAccount mount point: %w", err)
	}
	return dir, nil
}
