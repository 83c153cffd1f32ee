// Package seed creates what makes the lab look like a kubeadm cluster: the nodes (with kubeadm's
// labels, annotations and taints), the kubeadm-config ConfigMap, mirror pods for the static
// control-plane pods, kube-proxy, CoreDNS with a PodDisruptionBudget, and sample workloads for
// drain. Everything is created only if missing, so seeding twice changes nothing.
package seed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/stages"
)

// DemoNamespace holds the sample workloads.
const DemoNamespace = "demo"

// Seed creates everything that is missing.
func Seed(ctx context.Context, c kubernetes.Interface, cfg *config.Config) error {
	nodes, err := cfg.Nodes()
	if err != nil {
		return err
	}
	if err := createNodes(ctx, c, cfg, nodes); err != nil {
		return err
	}
	steps := []func(context.Context, kubernetes.Interface, *config.Config) error{
		kubeadmConfig, mirrorPods, kubeProxy, coreDNS, demoWorkloads,
	}
	for _, step := range steps {
		if err := step(ctx, c, cfg); err != nil {
			return err
		}
	}
	return nil
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func nodeObject(cfg *config.Config, n config.Node) *corev1.Node {
	labels := map[string]string{
		"beta.kubernetes.io/arch": "amd64",
		"beta.kubernetes.io/os":   "linux",
		"kubernetes.io/arch":      "amd64",
		"kubernetes.io/hostname":  n.Name,
		"kubernetes.io/os":        "linux",
		"type":                    "kwok",
	}
	var taints []corev1.Taint
	if n.ControlPlane {
		labels["node-role.kubernetes.io/control-plane"] = ""
		labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
		taints = append(taints, corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule})
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   n.Name,
			Labels: labels,
			Annotations: map[string]string{
				"kubeadm.alpha.kubernetes.io/cri-socket":                 "unix:///var/run/containerd/containerd.sock",
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
				stages.ManagedAnnotation:                                 "fake",
				stages.InternalIPAnnotation:                              n.IP.String(),
				"lab.grappe.dev/kubelet-version":                         config.KubernetesVersion,
			},
		},
		Spec: corev1.NodeSpec{Taints: taints},
	}
}

func createNodes(ctx context.Context, c kubernetes.Interface, cfg *config.Config, nodes []config.Node) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	sem := make(chan struct{}, 32)
	for _, n := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func(n config.Node) {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := c.CoreV1().Nodes().Create(ctx, nodeObject(cfg, n), metav1.CreateOptions{})
			if err = ignoreExists(err); err != nil {
				errs <- fmt.Errorf("create node %s: %w", n.Name, err)
			}
		}(n)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func kubeadmConfig(ctx context.Context, c kubernetes.Interface, cfg *config.Config) error {
	cluster := fmt.Sprintf(`apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
caCertificateValidityPeriod: 87600h0m0s
certificateValidityPeriod: 8760h0m0s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controlPlaneEndpoint: %s:6443
controllerManager: {}
dns: {}
encryptionAlgorithm: RSA-2048
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: %s
networking:
  dnsDomain: cluster.local
  podSubnet: %s
  serviceSubnet: %s
proxy: {}
scheduler: {}
`, config.ControlPlaneName, config.KubernetesVersion, cfg.PodSubnet, cfg.ServiceCIDR)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
		Data:       map[string]string{"ClusterConfiguration": cluster},
	}
	_, err := c.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{})
	return ignoreExists(err)
}

func mirrorPods(ctx context.Context, c kubernetes.Interface, cfg *config.Config) error {
	node, err := c.CoreV1().Nodes().Get(ctx, config.ControlPlaneName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("control-plane node: %w", err)
	}
	nodes, err := cfg.Nodes()
	if err != nil {
		return err
	}
	cpIP := nodes[0].IP.String()
	statics := []struct{ component, image string }{
		{"etcd", "registry.k8s.io/etcd:3.6.5-0"},
		{"kube-apiserver", "registry.k8s.io/kube-apiserver:" + config.KubernetesVersion},
		{"kube-controller-manager", "registry.k8s.io/kube-controller-manager:" + config.KubernetesVersion},
		{"kube-scheduler", "registry.k8s.io/kube-scheduler:" + config.KubernetesVersion},
	}
	isController := true
	for _, s := range statics {
		sum := sha256.Sum256([]byte(s.component + config.KubernetesVersion))
		hash := hex.EncodeToString(sum[:16])
		annotations := map[string]string{
			"kubernetes.io/config.hash":   hash,
			"kubernetes.io/config.mirror": hash,
			"kubernetes.io/config.seen":   "2026-11-28T00:00:00.000000000Z",
			"kubernetes.io/config.source": "file",
		}
		if s.component == "kube-apiserver" {
			annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = cpIP + ":6443"
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:        s.component + "-" + config.ControlPlaneName,
				Namespace:   "kube-system",
				Labels:      map[string]string{"component": s.component, "tier": "control-plane"},
				Annotations: annotations,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: &isController,
				}},
			},
			Spec: corev1.PodSpec{
				NodeName:          config.ControlPlaneName,
				HostNetwork:       true,
				PriorityClassName: "system-node-critical",
				Tolerations:       []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
				Containers: []corev1.Container{{
					Name:    s.component,
					Image:   s.image,
					Command: []string{s.component},
				}},
			},
		}
		if _, err := c.CoreV1().Pods("kube-system").Create(ctx, pod, metav1.CreateOptions{}); ignoreExists(err) != nil {
			return fmt.Errorf("mirror pod %s: %w", pod.Name, err)
		}
	}
	return nil
}

func kubeProxy(ctx context.Context, c kubernetes.Interface, cfg *config.Config) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}}
	if _, err := c.CoreV1().ServiceAccounts("kube-system").Create(ctx, sa, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system", Labels: map[string]string{"app": "kube-proxy"}},
		Data: map[string]string{"config.conf": fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: %s
mode: ""
`, cfg.PodSubnet)},
	}
	if _, err := c.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	labels := map[string]string{"k8s-app": "kube-proxy"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system", Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:        true,
					PriorityClassName:  "system-node-critical",
					ServiceAccountName: "kube-proxy",
					NodeSelector:       map[string]string{"kubernetes.io/os": "linux"},
					Tolerations:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{{
						Name:    "kube-proxy",
						Image:   "registry.k8s.io/kube-proxy:" + config.KubernetesVersion,
						Command: []string{"/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"},
					}},
				},
			},
		},
	}
	_, err := c.AppsV1().DaemonSets("kube-system").Create(ctx, ds, metav1.CreateOptions{})
	return ignoreExists(err)
}

func coreDNS(ctx context.Context, c kubernetes.Interface, cfg *config.Config) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}}
	if _, err := c.CoreV1().ServiceAccounts("kube-system").Create(ctx, sa, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
		Data: map[string]string{"Corefile": `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`},
	}
	if _, err := c.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	labels := map[string]string{"k8s-app": "kube-dns"}
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					PriorityClassName:  "system-cluster-critical",
					ServiceAccountName: "coredns",
					NodeSelector:       map[string]string{"kubernetes.io/os": "linux"},
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
					},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
								TopologyKey:   "kubernetes.io/hostname",
							},
						}},
					}},
					Containers: []corev1.Container{{
						Name:  "coredns",
						Image: "registry.k8s.io/coredns/coredns:v1.12.1",
						Args:  []string{"-conf", "/etc/coredns/Corefile"},
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("100m"),
							corev1.ResourceMemory: resource.MustParse("70Mi"),
						}},
					}},
				},
			},
		},
	}
	if _, err := c.AppsV1().Deployments("kube-system").Create(ctx, dep, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
		Spec: corev1.ServiceSpec{
			Selector:  labels,
			ClusterIP: dnsServiceIP(cfg.ServiceCIDR),
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
	// Looked up first: the API server checks the fixed ClusterIP before the name, so creating
	// it again fails with "provided IP is already allocated" instead of AlreadyExists.
	if _, err := c.CoreV1().Services("kube-system").Get(ctx, svc.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := c.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{}); ignoreExists(err) != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	maxUnavailable := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &maxUnavailable,
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	_, err := c.PolicyV1().PodDisruptionBudgets("kube-system").Create(ctx, pdb, metav1.CreateOptions{})
	return ignoreExists(err)
}

// dnsServiceIP is the tenth address of the service range (10.96.0.10 for 10.96.0.0/12).
func dnsServiceIP(serviceCIDR string) string {
	base := strings.SplitN(serviceCIDR, "/", 2)[0]
	parts := strings.Split(base, ".")
	if len(parts) != 4 {
		return ""
	}
	return fmt.Sprintf("%s.%s.%s.10", parts[0], parts[1], parts[2])
}

func demoWorkloads(ctx context.Context, c kubernetes.Interface, cfg *config.Config) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DemoNamespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	// Pods are refused until the service-account controller has created "default".
	for i := 0; ; i++ {
		_, err := c.CoreV1().ServiceAccounts(DemoNamespace).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			break
		}
		if i > 300 {
			return fmt.Errorf("service account demo/default never appeared: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	replicas := int32(3)
	webLabels := map[string]string{"app": "web"}
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: DemoNamespace, Labels: webLabels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: webLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "docker.io/library/nginx:1.27"}}},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(DemoNamespace).Create(ctx, web, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	zero := intstr.FromInt32(0)
	webPDB := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: DemoNamespace},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &zero, Selector: &metav1.LabelSelector{MatchLabels: webLabels}},
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets(DemoNamespace).Create(ctx, webPDB, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	one := int32(1)
	cacheLabels := map[string]string{"app": "cache"}
	cache := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cache", Namespace: DemoNamespace, Labels: cacheLabels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: cacheLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: cacheLabels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "redis", Image: "docker.io/library/redis:7",
						VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/data"}},
					}},
					Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(DemoNamespace).Create(ctx, cache, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	debug := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "debug-shell", Namespace: DemoNamespace, Labels: map[string]string{"app": "debug"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "shell", Image: "docker.io/library/busybox:1.37", Command: []string{"sleep", "infinity"}}}},
	}
	if _, err := c.CoreV1().Pods(DemoNamespace).Create(ctx, debug, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "db-migrate", Namespace: DemoNamespace},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "migrate", Image: "docker.io/library/busybox:1.37", Command: []string{"true"}}},
				},
			},
		},
	}
	_, err := c.BatchV1().Jobs(DemoNamespace).Create(ctx, job, metav1.CreateOptions{})
	return ignoreExists(err)
}
