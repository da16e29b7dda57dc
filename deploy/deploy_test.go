// Package deploy_test renders the kustomize trees under deploy/ with the
// kustomize library (no kubectl, no cluster), decodes every object strictly
// into the Kubernetes API types, and checks the manifests against the
// service they run: its settings, ports, drain and the Dockerfile.
package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/catalystbot/sentiment/config"
)

// trees are the kustomizations an apply -k may be pointed at.
var trees = []string{"base", "overlays/single-gpu"}

// secretName is the Secret the keys and webhook URLs come from.
const secretName = "sentimentd-keys"

// secretSettings never appear in a ConfigMap or as a literal value.
var secretSettings = []string{"GEMINI_API_KEY", "ANTHROPIC_API_KEY", "SENTIMENT_AUTH_TOKENS", "SENTIMENT_DISCORD_WEBHOOKS"}

// runtimeEnv are the container variables that are not service settings:
// the Go runtime's, and the node address the single-gpu overlay builds
// LLM_ENDPOINT_URL from.
var runtimeEnv = []string{"GOMEMLIMIT", "HOST_IP"}

// afterGrace is what stopping takes once SENTIMENT_SHUTDOWN_GRACE has run
// out: the server's wait for the lexicon answers of the calls the grace
// cut short (finalAnswerWait, 2 s) and the metrics server's stop (1 s).
const afterGrace = 3 * time.Second

// ollamaParallel is the parallel slots of the one Ollama the single-gpu
// overlay shares (OLLAMA_NUM_PARALLEL's default).
const ollamaParallel = 4

// fieldValues stand in for what the kubelet fills in from the downward
// API.
var fieldValues = map[string]string{"status.hostIP": "192.0.2.10", "status.podIP": "192.0.2.20", "metadata.name": "sentimentd-0", "metadata.namespace": "catalyst"}

// manifests is one tree rendered and decoded.
type manifests struct {
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      []*corev1.Secret
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	netpols      []*networkingv1.NetworkPolicy
	namespaces   []*corev1.Namespace
}

// decoder decodes YAML into the registered API types, refusing unknown
// and duplicate fields (case-sensitively) and kinds it does not know.
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
}

func render(t *testing.T, dir string) *manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	dec := decoder(t)
	out := &manifests{configMaps: map[string]*corev1.ConfigMap{}}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		obj, _, err := dec.Decode(b, nil, nil)
		if err != nil {
			t.Fatalf("%s %s/%s: %v", dir, r.GetApiVersion(), r.GetKind(), err)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			out.deployments = append(out.deployments, o)
		case *appsv1.StatefulSet:
			out.statefulSets = append(out.statefulSets, o)
		case *corev1.Service:
			out.services = append(out.services, o)
		case *corev1.ConfigMap:
			out.configMaps[o.Name] = o
		case *corev1.Secret:
			out.secrets = append(out.secrets, o)
		case *policyv1.PodDisruptionBudget:
			out.pdbs = append(out.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			out.hpas = append(out.hpas, o)
		case *networkingv1.NetworkPolicy:
			out.netpols = append(out.netpols, o)
		case *corev1.Namespace:
			out.namespaces = append(out.namespaces, o)
		default:
			t.Fatalf("%s: %s/%s %q: a kind this test does not check", dir, r.GetApiVersion(), r.GetKind(), r.GetName())
		}
	}
	return out
}

// TestStrictDecoderRefusesMistakes keeps the decoding above honest: a
// misspelt field, a field in the wrong case and an unknown kind fail.
func TestStrictDecoderRefusesMistakes(t *testing.T) {
	dec := decoder(t)
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: None}\n",
		"wrong case":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {Replicas: 2}\n",
		"duplicate":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
		"wrong type":    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: fifty}]}\n",
		"unknown kind":  "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\n",
	} {
		if _, _, err := dec.Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

func TestManifests(t *testing.T) {
	known := knownSettings(t)
	for _, dir := range trees {
		t.Run(dir, func(t *testing.T) {
			m := render(t, dir)
			if len(m.deployments) != 1 {
				t.Fatalf("%d Deployments, want 1 (sentimentd)", len(m.deployments))
			}
			d := m.deployments[0]
			c := container(t, &d.Spec.Template.Spec, "sentimentd")
			env := containerEnv(t, c, m.configMaps, false)
			cfg := load(t, env)
			// With every key present too: the Secret's settings must fit
			// with the ConfigMap's (an alert channel needs its webhook).
			load(t, containerEnv(t, c, m.configMaps, true))

			checkNames(t, c, m.configMaps, known)
			checkSecrets(t, c, m)
			checkProbesAndDrain(t, d, c, cfg)
			checkSecurity(t, m)
			checkMounts(t, d, c, cfg)
			checkResources(t, c, env)
			checkServices(t, m, d, c, cfg)
			checkScaling(t, m, d)
			checkRedis(t, m, cfg)
			checkDockerfile(t, c, cfg)
			if dir == "overlays/single-gpu" {
				checkSingleGPU(t, m, d, cfg)
			}
		})
	}
}

// knownSettings are the environment names sentimentd reads, from its
// -help text ("... (env NAME)").
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	var help bytes.Buffer
	_, err := config.Load([]string{"-help"}, func(string) string { return "" }, &help)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("config.Load(-help): %v", err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)\)`).FindAllStringSubmatch(help.String(), -1) {
		names[m[1]] = true
	}
	if len(names) < 50 || !names["SENTIMENT_SHUTDOWN_GRACE"] || !names["LLM_ENDPOINT_URL"] {
		t.Fatalf("found %d settings in the -help text; its format changed?", len(names))
	}
	return names
}

func container(t *testing.T, spec *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// containerEnv is the environment the kubelet would give c: the
// ConfigMaps of envFrom, then env in order, $(VAR) expanded from what
// came before, downward-API fields stood in for. Secret keys are absent
// (the Secret is optional) unless withSecrets, when each gets a valid
// stand-in.
func containerEnv(t *testing.T, c *corev1.Container, cms map[string]*corev1.ConfigMap, withSecrets bool) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := cms[from.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("envFrom names ConfigMap %q, not rendered", from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		default:
			t.Fatalf("envFrom %+v: only ConfigMaps (keys come one by one from the Secret)", from)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			v := varRef.ReplaceAllStringFunc(e.Value, func(ref string) string {
				name := varRef.FindStringSubmatch(ref)[1]
				val, ok := env[name]
				if !ok {
					t.Errorf("%s=%q refers to $(%s), not defined before it", e.Name, e.Value, name)
				}
				return val
			})
			env[e.Name] = v
		case e.ValueFrom.FieldRef != nil:
			v, ok := fieldValues[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("%s: no stand-in for field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			if withSecrets {
				env[e.Name] = secretStandIn(t, e.Name)
			}
		default:
			t.Fatalf("%s: an env source this test does not know", e.Name)
		}
	}
	return env
}

func secretStandIn(t *testing.T, name string) string {
	t.Helper()
	switch name {
	case "GEMINI_API_KEY", "ANTHROPIC_API_KEY":
		return "stand-in-api-key-0123456789"
	case "SENTIMENT_AUTH_TOKENS":
		return "stand-in-token-0123456789"
	case "SENTIMENT_DISCORD_WEBHOOKS":
		return "alerts=https://discord.com/api/webhooks/1/stand-in"
	case "REDIS_URL":
		return "redis://:stand-in@redis.example:6379/0"
	}
	t.Fatalf("%s comes from a Secret; add a stand-in value here", name)
	return ""
}

// load parses env as sentimentd would at start: a bad value or a
// combination it refuses fails the test with sentimentd's own line.
func load(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("sentimentd would not start with this environment: %v", err)
	}
	return cfg
}

// checkNames: every ConfigMap key the container reads and every env name
// is a setting sentimentd knows (a misspelt name would be ignored).
func checkNames(t *testing.T, c *corev1.Container, cms map[string]*corev1.ConfigMap, known map[string]bool) {
	t.Helper()
	for _, from := range c.EnvFrom {
		for _, k := range slices.Sorted(maps.Keys(cms[from.ConfigMapRef.Name].Data)) {
			if !known[from.Prefix+k] {
				t.Errorf("ConfigMap %s: %s is not a sentimentd setting", from.ConfigMapRef.Name, k)
			}
		}
	}
	for _, e := range c.Env {
		if !known[e.Name] && !slices.Contains(runtimeEnv, e.Name) {
			t.Errorf("env %s is not a sentimentd setting", e.Name)
		}
	}
}

// checkSecrets: keys and webhook URLs come from the Secret, one key each,
// and never sit in a ConfigMap or a literal; REDIS_URL may be literal
// only without a password; no Secret is rendered, so an apply never
// overwrites the keys made by hand.
func checkSecrets(t *testing.T, c *corev1.Container, m *manifests) {
	t.Helper()
	for name, cm := range m.configMaps {
		for k, v := range cm.Data {
			if slices.Contains(secretSettings, k) {
				t.Errorf("ConfigMap %s holds %s: it belongs in the Secret %s", name, k, secretName)
			}
			if k == "REDIS_URL" {
				checkRedisURLLiteral(t, "ConfigMap "+name, v)
			}
		}
	}
	byName := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		byName[e.Name] = e
	}
	for _, name := range secretSettings {
		e, ok := byName[name]
		if !ok {
			t.Errorf("%s is not wired from the Secret %s", name, secretName)
			continue
		}
		ref := (*corev1.SecretKeySelector)(nil)
		if e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
		if ref == nil || ref.Name != secretName || ref.Key != name {
			t.Errorf("%s must come from secretKeyRef %s/%s, got %+v", name, secretName, name, e)
		}
	}
	if e, ok := byName["REDIS_URL"]; ok {
		switch {
		case e.ValueFrom == nil:
			checkRedisURLLiteral(t, "env", e.Value)
		case e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secretName:
			t.Errorf("REDIS_URL from %+v: a literal without a password, or the Secret %s", e.ValueFrom, secretName)
		}
	}
	for _, s := range m.secrets {
		if len(s.Data)+len(s.StringData) > 0 {
			t.Errorf("Secret %s is rendered with data: keys are made by hand, never committed", s.Name)
		}
	}
}

func checkRedisURLLiteral(t *testing.T, where, v string) {
	t.Helper()
	u, err := url.Parse(v)
	if err != nil {
		t.Errorf("%s: REDIS_URL does not parse: %v", where, err)
		return
	}
	if _, has := u.User.Password(); has {
		t.Errorf("%s: REDIS_URL carries a password: it belongs in the Secret %s", where, secretName)
	}
}

func port(t *testing.T, setting, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil || n <= 0 {
		t.Fatalf("%s=%q: no fixed port", setting, addr)
	}
	return int32(n)
}

func containerPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}

// checkProbesAndDrain: liveness and readiness ask grpc.health.v1 on the
// port sentimentd listens on; the pod is given longer to stop than the
// preStop sleep and the drain take.
func checkProbesAndDrain(t *testing.T, d *appsv1.Deployment, c *corev1.Container, cfg config.Config) {
	t.Helper()
	grpcPort := port(t, "SENTIMENT_GRPC_ADDR", cfg.GRPCAddr)
	if got := containerPort(t, c, "grpc"); got != grpcPort {
		t.Errorf("container port grpc is %d, SENTIMENT_GRPC_ADDR listens on %d", got, grpcPort)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		switch {
		case p == nil:
			t.Errorf("no %s probe", name)
		case p.GRPC == nil || p.HTTPGet != nil || p.TCPSocket != nil || p.Exec != nil:
			t.Errorf("%s probe %+v: want a gRPC probe only", name, p.ProbeHandler)
		case p.GRPC.Port != grpcPort:
			t.Errorf("%s probe on port %d, gRPC listens on %d", name, p.GRPC.Port, grpcPort)
		}
	}
	if cfg.TLSCert != "" {
		t.Errorf("SENTIMENT_TLS_CERT is set: the kubelet's gRPC probes speak plaintext only")
	}

	var preStop time.Duration
	switch l := c.Lifecycle; {
	case l == nil || l.PreStop == nil:
		t.Errorf("no preStop hook: the pod would drain while the endpoints still send it calls")
	case l.PreStop.Sleep == nil || l.PreStop.Exec != nil:
		// There is no shell and no sleep binary in the image.
		t.Errorf("preStop %+v: want a sleep handler", l.PreStop)
	default:
		preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		if preStop <= 0 {
			t.Errorf("preStop sleeps %v", preStop)
		}
	}
	tgps := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if s := d.Spec.Template.Spec.TerminationGracePeriodSeconds; s != nil {
		tgps = *s
	}
	need := preStop + cfg.ShutdownGrace + afterGrace
	if time.Duration(tgps)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds=%d: stopping takes up to %v (preStop %v + SENTIMENT_SHUTDOWN_GRACE %v + %v)",
			tgps, need, preStop, cfg.ShutdownGrace, afterGrace)
	}
}

// checkSecurity: every container of every workload runs as a non-root
// user on a read-only root filesystem, without privilege escalation or
// capabilities, under the runtime's seccomp profile; sentimentd as the
// image's user, 65532.
func checkSecurity(t *testing.T, m *manifests) {
	t.Helper()
	type podOf struct {
		name string
		spec *corev1.PodSpec
	}
	var pods []podOf
	for _, d := range m.deployments {
		pods = append(pods, podOf{"Deployment " + d.Name, &d.Spec.Template.Spec})
	}
	for _, s := range m.statefulSets {
		pods = append(pods, podOf{"StatefulSet " + s.Name, &s.Spec.Template.Spec})
	}
	for _, p := range pods {
		psc := p.spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		if p.spec.HostNetwork || p.spec.HostPID || p.spec.HostIPC {
			t.Errorf("%s shares a host namespace", p.name)
		}
		for _, c := range append(slices.Clone(p.spec.InitContainers), p.spec.Containers...) {
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			nonRoot := first(sc.RunAsNonRoot, psc.RunAsNonRoot)
			uid := first(sc.RunAsUser, psc.RunAsUser)
			seccomp := first(sc.SeccompProfile, psc.SeccompProfile)
			where := p.name + " container " + c.Name
			switch {
			case nonRoot == nil || !*nonRoot:
				t.Errorf("%s: runAsNonRoot is not true", where)
			case uid == nil || *uid == 0:
				t.Errorf("%s: no non-root runAsUser", where)
			case c.Name == "sentimentd" && *uid != 65532:
				t.Errorf("%s: runAsUser %d, the image's user is 65532", where, *uid)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: root filesystem is writable", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities %+v: drop ALL, add none", where, sc.Capabilities)
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccomp profile %+v, want RuntimeDefault", where, seccomp)
			}
		}
	}
}

func first[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// checkMounts: what sentimentd writes has a writable volume under a
// read-only root (the usage log, when set), host paths are mounted
// read-only, and a sysfs root other than /sys is a mount.
func checkMounts(t *testing.T, d *appsv1.Deployment, c *corev1.Container, cfg config.Config) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	mountAt := func(path string) *corev1.VolumeMount {
		var best *corev1.VolumeMount
		for i, vm := range c.VolumeMounts {
			if (path == vm.MountPath || strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/")) &&
				(best == nil || len(vm.MountPath) > len(best.MountPath)) {
				best = &c.VolumeMounts[i]
			}
		}
		return best
	}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Errorf("mount %s: no volume %q", vm.MountPath, vm.Name)
			continue
		}
		if v.HostPath != nil && !vm.ReadOnly {
			t.Errorf("host path %s is mounted writable at %s", v.HostPath.Path, vm.MountPath)
		}
	}
	if p := cfg.UsageLogPath; p != "" {
		if vm := mountAt(p); vm == nil || vm.ReadOnly {
			t.Errorf("LLM_USAGE_LOG_PATH=%s is not on a writable volume (the root filesystem is read-only)", p)
		}
	}
	if cfg.GPUReader != "none" && cfg.GPUSysfsRoot != "/sys" {
		if vm := mountAt(cfg.GPUSysfsRoot); vm == nil || vm.MountPath != cfg.GPUSysfsRoot {
			t.Errorf("SENTIMENT_GPU_SYSFS_ROOT=%s is not a mount", cfg.GPUSysfsRoot)
		}
	}
	if cfg.GPU.RestartCmd != "" {
		t.Errorf("SENTIMENT_GPU_RESTART_CMD is set: the image has no /bin/sh to run it")
	}
}

// checkResources: requests and limits are set, and GOMEMLIMIT sits under
// the memory limit.
func checkResources(t *testing.T, c *corev1.Container, env map[string]string) {
	t.Helper()
	r := c.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := r.Requests[name]; !ok {
			t.Errorf("no %s request", name)
		}
	}
	limit, ok := r.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatalf("no memory limit")
	}
	if req := r.Requests[corev1.ResourceMemory]; req.Cmp(limit) > 0 {
		t.Errorf("memory request %s above the limit %s", req.String(), limit.String())
	}
	if v, ok := env["GOMEMLIMIT"]; ok {
		n, err := goMemLimit(v)
		if err != nil {
			t.Fatalf("GOMEMLIMIT=%q: %v", v, err)
		}
		if n >= limit.Value() {
			t.Errorf("GOMEMLIMIT=%s is not under the memory limit %s", v, limit.String())
		}
	}
}

// goMemLimit reads GOMEMLIMIT as the Go runtime does: bytes, or a number
// with B, KiB, MiB, GiB or TiB.
func goMemLimit(v string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			x, err := strconv.ParseInt(n, 10, 64)
			return x * u.mult, err
		}
	}
	return strconv.ParseInt(v, 10, 64)
}

func selects(sel map[string]string, podLabels map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(podLabels))
}

func labelSelects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %+v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// targetPort resolves a Service port's target against a container.
func targetPort(t *testing.T, sp corev1.ServicePort, c *corev1.Container) int32 {
	t.Helper()
	if sp.TargetPort.Type == intstr.String {
		return containerPort(t, c, sp.TargetPort.StrVal)
	}
	if sp.TargetPort.IntVal == 0 {
		return sp.Port
	}
	return sp.TargetPort.IntVal
}

// checkServices: a headless Service for client-side balancing on the gRPC
// port, a metrics Service on the port SENTIMENT_METRICS_ADDR names with
// matching scrape annotations, every Service selecting pods that exist.
func checkServices(t *testing.T, m *manifests, d *appsv1.Deployment, c *corev1.Container, cfg config.Config) {
	t.Helper()
	pod := d.Spec.Template.Labels
	if !labelSelects(t, d.Spec.Selector, pod) {
		t.Errorf("Deployment selector does not match its own pods")
	}
	grpcPort := port(t, "SENTIMENT_GRPC_ADDR", cfg.GRPCAddr)
	if cfg.MetricsAddr == "" {
		t.Fatalf("SENTIMENT_METRICS_ADDR is empty: metrics are off")
	}
	metricsPort := port(t, "SENTIMENT_METRICS_ADDR", cfg.MetricsAddr)
	if got := containerPort(t, c, "metrics"); got != metricsPort {
		t.Errorf("container port metrics is %d, SENTIMENT_METRICS_ADDR listens on %d", got, metricsPort)
	}
	var headless, metrics bool
	for _, s := range m.services {
		matched := false
		for _, w := range workloadsLabels(m) {
			matched = matched || selects(s.Spec.Selector, w)
		}
		if !matched {
			t.Errorf("Service %s selects no pods of a rendered workload", s.Name)
		}
		if !selects(s.Spec.Selector, pod) {
			continue
		}
		for _, sp := range s.Spec.Ports {
			switch targetPort(t, sp, c) {
			case grpcPort:
				if s.Spec.ClusterIP != corev1.ClusterIPNone {
					t.Errorf("Service %s fronts gRPC with a cluster IP: HTTP/2 connections would pin clients to one pod; make it headless", s.Name)
				}
				if s.Spec.PublishNotReadyAddresses {
					t.Errorf("Service %s publishes pods that are not ready (draining ones among them)", s.Name)
				}
				headless = true
			case metricsPort:
				a := s.Annotations
				if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) || a["prometheus.io/path"] != "/metrics" {
					t.Errorf("Service %s: scrape annotations %v do not name port %d and /metrics", s.Name, a, metricsPort)
				}
				metrics = true
			default:
				t.Errorf("Service %s port %s targets neither gRPC (%d) nor metrics (%d)", s.Name, sp.Name, grpcPort, metricsPort)
			}
		}
	}
	if !headless {
		t.Errorf("no headless Service on the gRPC port %d", grpcPort)
	}
	if !metrics {
		t.Errorf("no Service on the metrics port %d", metricsPort)
	}
	for _, np := range m.netpols {
		for _, rule := range np.Spec.Ingress {
			for _, peer := range rule.From {
				if peer.PodSelector != nil && !slices.ContainsFunc(workloadsLabels(m), func(l map[string]string) bool { return labelSelects(t, peer.PodSelector, l) }) {
					t.Errorf("NetworkPolicy %s admits pods no workload runs", np.Name)
				}
			}
		}
		if !slices.ContainsFunc(workloadsLabels(m), func(l map[string]string) bool { return labelSelects(t, &np.Spec.PodSelector, l) }) {
			t.Errorf("NetworkPolicy %s applies to no workload's pods", np.Name)
		}
	}
}

func workloadsLabels(m *manifests) []map[string]string {
	var out []map[string]string
	for _, d := range m.deployments {
		out = append(out, d.Spec.Template.Labels)
	}
	for _, s := range m.statefulSets {
		out = append(out, s.Spec.Template.Labels)
	}
	return out
}

// checkScaling: a PodDisruptionBudget covers the pods; an autoscaler, when
// there is one, targets the Deployment, which then leaves the replica
// count to it.
func checkScaling(t *testing.T, m *manifests, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Labels
	if !slices.ContainsFunc(m.pdbs, func(p *policyv1.PodDisruptionBudget) bool { return labelSelects(t, p.Spec.Selector, pod) }) {
		t.Errorf("no PodDisruptionBudget selects sentimentd's pods")
	}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != d.Name {
			t.Errorf("HorizontalPodAutoscaler %s targets %+v, not Deployment %s", h.Name, ref, d.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: min %v max %d: at least two replicas", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if !slices.ContainsFunc(h.Spec.Metrics, func(ms autoscalingv2.MetricSpec) bool {
			return ms.Resource != nil && ms.Resource.Name == corev1.ResourceCPU
		}) {
			t.Errorf("HorizontalPodAutoscaler %s does not scale on CPU", h.Name)
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment sets replicas=%d while %s scales it: every apply would reset the count", *d.Spec.Replicas, h.Name)
		}
	}
	if len(m.hpas) == 0 && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2) {
		t.Errorf("no autoscaler and replicas %v: want at least two", d.Spec.Replicas)
	}
}

// checkRedis: the Redis that REDIS_URL names is rendered, keeps its data
// in an append-only file on a claimed volume, and never evicts.
func checkRedis(t *testing.T, m *manifests, cfg config.Config) {
	t.Helper()
	raw := cfg.RedisURL.Reveal()
	if raw == "" {
		t.Errorf("REDIS_URL is empty: replicas would not share quotas")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	if len(m.statefulSets) != 1 {
		t.Fatalf("%d StatefulSets, want the one Redis", len(m.statefulSets))
	}
	ss := m.statefulSets[0]
	var svc *corev1.Service
	for _, s := range m.services {
		if s.Name == ss.Spec.ServiceName {
			svc = s
		}
	}
	switch {
	case svc == nil:
		t.Fatalf("StatefulSet %s: no Service %q", ss.Name, ss.Spec.ServiceName)
	case svc.Spec.ClusterIP != corev1.ClusterIPNone:
		t.Errorf("Service %s of a StatefulSet should be headless", svc.Name)
	case !selects(svc.Spec.Selector, ss.Spec.Template.Labels):
		t.Errorf("Service %s does not select %s's pods", svc.Name, ss.Name)
	}
	if host := strings.SplitN(u.Hostname(), ".", 2)[0]; host != svc.Name {
		t.Errorf("REDIS_URL names host %q, the Redis Service is %q", u.Hostname(), svc.Name)
	}
	if p := u.Port(); len(svc.Spec.Ports) != 1 || p != strconv.Itoa(int(svc.Spec.Ports[0].Port)) {
		t.Errorf("REDIS_URL port %q, the Service's ports %+v", p, svc.Spec.Ports)
	}

	spec := &ss.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("StatefulSet %s: %d containers, want 1", ss.Name, len(spec.Containers))
	}
	rc := &spec.Containers[0]
	confPath := ""
	for _, a := range append(slices.Clone(rc.Command), rc.Args...) {
		if strings.HasSuffix(a, ".conf") {
			confPath = a
		}
	}
	if confPath == "" {
		t.Fatalf("redis-server is not started with a configuration file: %v %v", rc.Command, rc.Args)
	}
	conf := ""
	for _, vm := range rc.VolumeMounts {
		rel, ok := strings.CutPrefix(confPath, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				cm, ok := m.configMaps[v.ConfigMap.Name]
				if !ok {
					t.Fatalf("volume %s: ConfigMap %s not rendered", v.Name, v.ConfigMap.Name)
				}
				conf, ok = cm.Data[rel]
				if !ok {
					t.Fatalf("ConfigMap %s has no %s", cm.Name, rel)
				}
			}
		}
	}
	if conf == "" {
		t.Fatalf("%s is not a file of a mounted ConfigMap", confPath)
	}
	directives := redisDirectives(conf)
	for k, want := range map[string]string{"appendonly": "yes", "maxmemory-policy": "noeviction"} {
		if got := directives[k]; got != want {
			t.Errorf("redis.conf: %s %q, want %q", k, got, want)
		}
	}
	if mm := directives["maxmemory"]; mm == "" || mm == "0" {
		t.Errorf("redis.conf: maxmemory %q: without one, noeviction never applies and the container's limit kills Redis instead", mm)
	}
	dataDir := directives["dir"]
	claimed := false
	for _, vct := range ss.Spec.VolumeClaimTemplates {
		for _, vm := range rc.VolumeMounts {
			if vm.Name == vct.Name && vm.MountPath == dataDir && !vm.ReadOnly {
				claimed = true
			}
		}
	}
	if !claimed {
		t.Errorf("redis.conf dir %q is not a mounted volumeClaimTemplate: the append-only file would not survive the pod", dataDir)
	}
}

// redisDirectives reads a redis.conf: one directive a line, # comments.
func redisDirectives(conf string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		out[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	return out
}

// checkDockerfile: the image's final stage runs as the user the pods run
// as, exposes the ports the manifests use, and starts sentimentd; the
// build is static.
func checkDockerfile(t *testing.T, c *corev1.Container, cfg config.Config) {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := dockerStages(string(b))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a final one", len(stages))
	}
	final := stages[len(stages)-1]
	if !strings.Contains(final[0].args, "distroless/static") {
		t.Errorf("final stage FROM %s: want distroless/static", final[0].args)
	}
	var user, entry string
	exposed := map[int32]bool{}
	for _, in := range final {
		switch in.op {
		case "USER":
			user = in.args
		case "EXPOSE":
			for _, f := range strings.Fields(in.args) {
				n, err := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
				if err != nil {
					t.Errorf("EXPOSE %s", f)
				}
				exposed[int32(n)] = true
			}
		case "ENTRYPOINT":
			entry = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage USER %q: want a non-root user", user)
	} else if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil && uid != strconv.FormatInt(*c.SecurityContext.RunAsUser, 10) {
		t.Errorf("final stage USER %s, the pods run as %d", uid, *c.SecurityContext.RunAsUser)
	}
	want := map[int32]bool{
		port(t, "SENTIMENT_GRPC_ADDR", cfg.GRPCAddr):       true,
		port(t, "SENTIMENT_METRICS_ADDR", cfg.MetricsAddr): true,
	}
	if !maps.Equal(exposed, want) {
		t.Errorf("EXPOSE %v, the service listens on %v", slices.Sorted(maps.Keys(exposed)), slices.Sorted(maps.Keys(want)))
	}
	if !strings.HasPrefix(entry, "[") || !strings.Contains(entry, "sentimentd") {
		t.Errorf("ENTRYPOINT %s: want the exec form running sentimentd (it must be PID 1 to get SIGTERM)", entry)
	}
	build := ""
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			build += in.op + " " + in.args + "\n"
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/sentimentd"} {
		if !strings.Contains(build, want) {
			t.Errorf("build stages lack %q", want)
		}
	}
}

type instruction struct{ op, args string }

// dockerStages splits a Dockerfile into its stages, each starting with
// its FROM; continuation lines are joined and comments dropped.
func dockerStages(text string) [][]instruction {
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		op, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(op), strings.TrimSpace(args)}
		if in.op == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// checkSingleGPU: two replicas in front of one Ollama on the node share
// its parallel slots, reach it at the node's address, and read the node's
// VRAM from its sysfs.
func checkSingleGPU(t *testing.T, m *manifests, d *appsv1.Deployment, cfg config.Config) {
	t.Helper()
	if len(m.hpas) != 0 {
		t.Errorf("an autoscaler would add replicas and overcommit the one GPU")
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if !cfg.Local.Enabled {
		t.Fatalf("the local tier is off")
	}
	if n := int(replicas) * cfg.Local.MaxConcurrent; n > ollamaParallel {
		t.Errorf("%d replicas x LLM_MAX_CONCURRENT=%d = %d calls at once, Ollama serves %d", replicas, cfg.Local.MaxConcurrent, n, ollamaParallel)
	}
	if u, err := url.Parse(cfg.Local.Endpoint); err != nil || u.Hostname() != fieldValues["status.hostIP"] {
		t.Errorf("LLM_ENDPOINT_URL=%s: want the node's address (status.hostIP)", cfg.Local.Endpoint)
	}
	if cfg.GPUReader != "sysfs" {
		t.Errorf("SENTIMENT_GPU_READER=%s: the image has no smi tools; sysfs is the reader that works", cfg.GPUReader)
	}
	hostSys := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.HostPath != nil && v.HostPath.Path == "/sys" {
			hostSys = true
		}
	}
	if !hostSys {
		t.Errorf("the node's /sys is not mounted (the links under class/drm point into /sys/devices)")
	}
	if cfg.GPUCleanupInterval != 0 {
		t.Errorf("GPU_CLEANUP_INTERVAL_SEC=%v: each replica would unload the model under the other's calls", cfg.GPUCleanupInterval)
	}
	if len(m.namespaces) != 1 {
		t.Errorf("%d Namespaces rendered, want the overlay's", len(m.namespaces))
	}
	for _, d := range m.deployments {
		if d.Namespace != m.namespaces[0].Name {
			t.Errorf("Deployment %s in namespace %q", d.Name, d.Namespace)
		}
	}
}
