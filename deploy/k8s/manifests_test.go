package k8s

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor
// the manifests use; unknown fields fail the strict decode, as they would
// fail the operator's CRD validation.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifests holds every object of the directory, decoded strictly.
type manifests struct {
	statefulSets    []*appsv1.StatefulSet
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	services        []*corev1.Service
	serviceMonitors []*serviceMonitor
	networkPolicies []*networkingv1.NetworkPolicy
}

func load(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s #%d: %v", f, i, err)
			}
			where := fmt.Sprintf("%s #%d (%s %s)", f, i, head.APIVersion, head.Kind)
			strict := func(v any) {
				if err := yaml.UnmarshalStrict(doc, v); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
			}
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 StatefulSet":
				var o appsv1.StatefulSet
				strict(&o)
				m.statefulSets = append(m.statefulSets, &o)
			case "v1 ConfigMap":
				var o corev1.ConfigMap
				strict(&o)
				m.configMaps[o.Name] = &o
			case "v1 Secret":
				var o corev1.Secret
				strict(&o)
				m.secrets[o.Name] = &o
			case "v1 Service":
				var o corev1.Service
				strict(&o)
				m.services = append(m.services, &o)
			case "networking.k8s.io/v1 NetworkPolicy":
				var o networkingv1.NetworkPolicy
				strict(&o)
				m.networkPolicies = append(m.networkPolicies, &o)
			case "monitoring.coreos.com/v1 ServiceMonitor":
				var o serviceMonitor
				strict(&o)
				m.serviceMonitors = append(m.serviceMonitors, &o)
			default:
				t.Fatalf("%s: kind not checked by this test; add it", where)
			}
		}
	}
	return m
}

func TestStrictDecode(t *testing.T) {
	m := load(t)
	if len(m.statefulSets) != 1 || len(m.services) != 1 || len(m.serviceMonitors) != 1 || len(m.configMaps) != 1 || len(m.secrets) != 1 ||
		len(m.networkPolicies) != 1 {
		t.Fatalf("want one of each object, got %d StatefulSets, %d Services, %d ServiceMonitors, %d ConfigMaps, %d Secrets, %d NetworkPolicies",
			len(m.statefulSets), len(m.services), len(m.serviceMonitors), len(m.configMaps), len(m.secrets), len(m.networkPolicies))
	}
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestManifestsFitTogether checks the references between the objects and
// the channel's contract: one replica, the Pebble directory on a PVC at
// checkpoint.dir, probes on the admin port, secrets as files the config
// names, a Service that keeps NotReady pods scrapeable, and a
// ServiceMonitor that finds it.
func TestManifestsFitTogether(t *testing.T) {
	m := load(t)
	sts := m.statefulSets[0]
	pod := sts.Spec.Template
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		t.Errorf("StatefulSet replicas = %v, want 1 (one channel, one applier)", sts.Spec.Replicas)
	}
	if !subset(sts.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("StatefulSet selector %v does not match its pod labels %v", sts.Spec.Selector.MatchLabels, pod.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// The channel config comes from the ConfigMap volume.
	var cfgText string
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm
		if _, ok := volumes[vm.Name]; !ok && vm.Name != sts.Spec.VolumeClaimTemplates[0].Name {
			t.Errorf("volumeMount %s has no volume", vm.Name)
		}
	}
	configPath := ""
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			configPath = c.Args[i+1]
		}
	}
	for name, v := range volumes {
		switch {
		case v.ConfigMap != nil:
			cm := m.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s names ConfigMap %s, not in the manifests", name, v.ConfigMap.Name)
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					t.Errorf("volume %s names key %s, not in ConfigMap %s", name, it.Key, cm.Name)
				}
			}
			vm := mounts[name]
			if got := filepath.Join(vm.MountPath); got == configPath || filepath.Join(vm.MountPath, vm.SubPath) == configPath {
				cfgText = cm.Data["hamal.yaml"]
			}
		case v.Secret != nil:
			sec := m.secrets[v.Secret.SecretName]
			if sec == nil {
				t.Fatalf("volume %s names Secret %s, not in the manifests", name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				if _, ok := sec.StringData[it.Key]; !ok {
					if _, ok := sec.Data[it.Key]; !ok {
						t.Errorf("volume %s names key %s, not in Secret %s", name, it.Key, sec.Name)
					}
				}
			}
		}
	}
	if cfgText == "" {
		t.Fatalf("no ConfigMap is mounted at --config %s", configPath)
	}
	var cfg struct {
		Source struct {
			Addr         string `json:"addr"`
			PasswordFile string `json:"password_file"`
		} `json:"source"`
		Sink struct {
			Addr         string `json:"addr"`
			PasswordFile string `json:"password_file"`
		} `json:"sink"`
		Checkpoint struct {
			Dir string `json:"dir"`
		} `json:"checkpoint"`
		Admin struct {
			Listen    string `json:"listen"`
			TokenFile string `json:"token_file"`
		} `json:"admin"`
	}
	if err := yaml.Unmarshal([]byte(cfgText), &cfg); err != nil {
		t.Fatalf("hamal.yaml in the ConfigMap: %v", err)
	}

	// Every secret file the config names is in a mounted Secret.
	for key, file := range map[string]string{"source.password_file": cfg.Source.PasswordFile, "sink.password_file": cfg.Sink.PasswordFile, "admin.token_file": cfg.Admin.TokenFile} {
		found := false
		for name, v := range volumes {
			if v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if filepath.Join(mounts[name].MountPath, it.Path) == file {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s %q is not a file of a mounted Secret", key, file)
		}
	}

	// The checkpoint directory is the PVC.
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("want one volumeClaimTemplate for the Pebble directory, got %d", len(sts.Spec.VolumeClaimTemplates))
	}
	pvc := sts.Spec.VolumeClaimTemplates[0]
	if vm, ok := mounts[pvc.Name]; !ok || vm.MountPath != cfg.Checkpoint.Dir || vm.ReadOnly {
		t.Errorf("PVC %s mounted at %q, want writable at checkpoint.dir %q", pvc.Name, vm.MountPath, cfg.Checkpoint.Dir)
	}

	// Probes hit the admin port on /healthz and /readyz.
	_, port, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil {
		t.Fatalf("admin.listen %q: %v", cfg.Admin.Listen, err)
	}
	var adminPort *corev1.ContainerPort
	for i := range c.Ports {
		if fmt.Sprint(c.Ports[i].ContainerPort) == port {
			adminPort = &c.Ports[i]
		}
	}
	if adminPort == nil || adminPort.Name == "" {
		t.Fatalf("no named container port %s for admin.listen", port)
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != adminPort.Name {
			t.Errorf("probe %+v, want GET %s on port %s", probe, want, adminPort.Name)
		}
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds < 40 {
		t.Errorf("terminationGracePeriodSeconds %v leaves no time to drain (30s) and persist", pod.Spec.TerminationGracePeriodSeconds)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v: want a read-only root and no privilege escalation", sc)
	}

	// The Service selects the pod, exposes the admin port by name, and
	// keeps NotReady (state error) pods scrapeable.
	svc := m.services[0]
	if !subset(svc.Spec.Selector, pod.Labels) {
		t.Errorf("Service selector %v does not match pod labels %v", svc.Spec.Selector, pod.Labels)
	}
	if !svc.Spec.PublishNotReadyAddresses {
		t.Error("Service must publish NotReady addresses, or a channel in error vanishes from Prometheus")
	}
	if sts.Spec.ServiceName != svc.Name {
		t.Errorf("StatefulSet serviceName %q, Service %q", sts.Spec.ServiceName, svc.Name)
	}
	var svcPort string
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.String() == adminPort.Name || fmt.Sprint(p.TargetPort.IntValue()) == port {
			svcPort = p.Name
		}
	}
	if svcPort == "" {
		t.Fatalf("Service has no port targeting %s", adminPort.Name)
	}

	// The ServiceMonitor finds the Service and scrapes /metrics there.
	sm := m.serviceMonitors[0]
	if !subset(sm.Spec.Selector.MatchLabels, svc.Labels) {
		t.Errorf("ServiceMonitor selector %v does not match Service labels %v", sm.Spec.Selector.MatchLabels, svc.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svcPort || strings.TrimSpace(sm.Spec.Endpoints[0].Path) != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want port %s path /metrics", sm.Spec.Endpoints, svcPort)
	}
}

// TestNetworkPolicy: the channel's pod is isolated both ways. Ingress
// reaches only the admin port, and only from selected peers (never from
// everyone); egress allows DNS and the ports of source.addr and
// sink.addr, nothing else.
func TestNetworkPolicy(t *testing.T) {
	m := load(t)
	np := m.networkPolicies[0]
	pod := m.statefulSets[0].Spec.Template
	if !subset(np.Spec.PodSelector.MatchLabels, pod.Labels) {
		t.Fatalf("NetworkPolicy podSelector %v does not select the pod (labels %v)", np.Spec.PodSelector.MatchLabels, pod.Labels)
	}
	types := map[networkingv1.PolicyType]bool{}
	for _, pt := range np.Spec.PolicyTypes {
		types[pt] = true
	}
	if !types[networkingv1.PolicyTypeIngress] || !types[networkingv1.PolicyTypeEgress] {
		t.Errorf("policyTypes %v: want Ingress and Egress", np.Spec.PolicyTypes)
	}
	var adminPort string
	for _, p := range pod.Spec.Containers[0].Ports {
		if p.Name == "admin" {
			adminPort = p.Name
		}
	}
	if len(np.Spec.Ingress) == 0 {
		t.Fatal("no ingress rule: Prometheus could not scrape")
	}
	for i, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("ingress[%d] admits every peer", i)
		}
		for _, peer := range rule.From {
			if peer.IPBlock == nil && peer.PodSelector == nil && peer.NamespaceSelector == nil {
				t.Errorf("ingress[%d]: an empty peer admits everyone", i)
			}
			if peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels) == 0 && len(peer.NamespaceSelector.MatchExpressions) == 0 {
				t.Errorf("ingress[%d]: an empty namespaceSelector admits every namespace", i)
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("ingress[%d] opens every port", i)
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.String() != adminPort {
				t.Errorf("ingress[%d] opens port %v, want only %s", i, p.Port, adminPort)
			}
		}
	}

	cfgText := m.configMaps[pod.Spec.Volumes[0].ConfigMap.Name].Data["hamal.yaml"]
	var cfg struct {
		Source struct{ Addr string } `json:"source"`
		Sink   struct{ Addr string } `json:"sink"`
	}
	if err := yaml.Unmarshal([]byte(cfgText), &cfg); err != nil {
		t.Fatal(err)
	}
	egress := map[string]bool{}
	for i, rule := range np.Spec.Egress {
		if len(rule.To) == 0 {
			t.Errorf("egress[%d] reaches every destination", i)
		}
		for _, p := range rule.Ports {
			egress[p.Port.String()] = true
		}
	}
	for key, addr := range map[string]string{"source.addr": cfg.Source.Addr, "sink.addr": cfg.Sink.Addr} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s %q: %v", key, addr, err)
		}
		if !egress[port] {
			t.Errorf("%s %s: port %s is not allowed out", key, addr, port)
		}
	}
	if !egress["53"] {
		t.Error("DNS (port 53) is not allowed out: the servers' names would not resolve")
	}
}
