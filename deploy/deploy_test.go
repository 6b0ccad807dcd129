// Package deploy_test checks the deployment artifacts under deploy/ as far as a machine without
// Docker or Kubernetes can: every YAML and JSON file parses; every NATS config we ship fsyncs each
// write (sync_interval: always, DESIGN.md §5); every worker config loads with the real config
// loader; the workers of the Compose file and of the Kubernetes Deployment form a pool on one
// config; the KEDA ScaledObject matches the consumers; and the
// Grafana dashboard queries only metrics the worker exports.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/metrics"
)

// The tests run in deploy/.
const (
	composeFile   = "compose/compose.yaml"
	k8sDir        = "k8s"
	dashboardFile = "grafana/scimflow-dashboard.json"
	modelFile     = "examples/models/cyberark.yaml"
	natsValues    = "k8s/nats-values.yaml"
	kedaFile      = "k8s/keda-scaledobject.yaml"
)

// testEnv is what the worker configs' ${ENV} references resolve to; any other reference is unset.
var testEnv = map[string]string{
	"SCIMFLOW_CLIENT_ID":     "test-client-id",
	"SCIMFLOW_CLIENT_SECRET": "test-client-secret",
}

func lookupEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

// files returns the files under deploy/ whose names end in one of the suffixes.
func files(t *testing.T, suffixes ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for _, s := range suffixes {
			if strings.HasSuffix(d.Name(), s) {
				out = append(out, p)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// yamlDocs decodes every document of a (multi-document) YAML file.
func yamlDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeAll(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return docs
}

func decodeAll(data []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for i := 1; ; i++ {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// decodeInto decodes the (first) document of a YAML file into v.
func decodeInto(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestYAMLFilesParse(t *testing.T) {
	all := files(t, ".yaml", ".yml")
	if len(all) == 0 {
		t.Fatal("no YAML files found under deploy/")
	}
	for _, f := range all {
		t.Run(f, func(t *testing.T) {
			docs := yamlDocs(t, f)
			if len(docs) == 0 {
				t.Fatalf("%s holds no YAML document", f)
			}
			if filepath.Dir(f) != k8sDir || f == filepath.FromSlash(natsValues) {
				return
			}
			// Kubernetes manifests: each document is an object, and embedded YAML files in
			// ConfigMaps parse too.
			for i, d := range docs {
				if d["apiVersion"] == nil || d["kind"] == nil {
					t.Errorf("%s document %d: no apiVersion or kind", f, i+1)
				}
				if d["kind"] != "ConfigMap" {
					continue
				}
				data, _ := d["data"].(map[string]any)
				for k, v := range data {
					if !strings.HasSuffix(k, ".yaml") && !strings.HasSuffix(k, ".yml") {
						continue
					}
					s, _ := v.(string)
					if _, err := decodeAll([]byte(s)); err != nil {
						t.Errorf("%s: ConfigMap key %s: %v", f, k, err)
					}
				}
			}
		})
	}
}

func TestJSONFilesParse(t *testing.T) {
	all := files(t, ".json")
	if len(all) == 0 {
		t.Fatal("no JSON files found under deploy/")
	}
	for _, f := range all {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestNATSConfigsSyncAlways: DESIGN.md §5 requires `sync_interval: always` in every NATS config we
// ship. Each .conf is read twice: with the NATS config parser, to find the key inside the
// jetstream block, and with the server's own option processing, which must end with SyncAlways on.
func TestNATSConfigsSyncAlways(t *testing.T) {
	all := files(t, ".conf")
	if len(all) == 0 {
		t.Fatal("no NATS .conf files found under deploy/")
	}
	t.Setenv("NATS_SERVER_NAME", "nats-test") // deploy/nats/nats.conf takes it from the environment
	for _, f := range all {
		t.Run(f, func(t *testing.T) {
			m, err := conf.ParseFile(f)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			js, ok := m["jetstream"].(map[string]any)
			if !ok {
				t.Fatalf("no jetstream { } block")
			}
			if v, _ := js["sync_interval"].(string); !strings.EqualFold(v, "always") {
				t.Errorf("jetstream.sync_interval is %v, want always", js["sync_interval"])
			}
			if js["store_dir"] == nil {
				t.Errorf("jetstream.store_dir is not set")
			}
			opts, err := server.ProcessConfigFile(f)
			if err != nil {
				t.Fatalf("nats-server refuses it: %v", err)
			}
			if !opts.JetStream || !opts.SyncAlways {
				t.Errorf("JetStream %v, SyncAlways %v: want both on", opts.JetStream, opts.SyncAlways)
			}
			if opts.HTTPPort != 8222 {
				t.Errorf("monitoring port %d, want 8222", opts.HTTPPort)
			}
			if len(opts.Routes) != 3 || opts.Cluster.Name == "" {
				t.Errorf("cluster %q with %d routes, want a named 3-node cluster", opts.Cluster.Name, len(opts.Routes))
			}
		})
	}
}

// TestNATSHelmValues: the Kubernetes NATS cluster (official Helm chart) is configured the same way.
func TestNATSHelmValues(t *testing.T) {
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled bool `yaml:"enabled"`
					PVC     struct {
						Enabled bool `yaml:"enabled"`
					} `yaml:"pvc"`
				} `yaml:"fileStore"`
				Merge map[string]any `yaml:"merge"`
			} `yaml:"jetstream"`
			Monitor struct {
				Enabled bool `yaml:"enabled"`
				Port    int  `yaml:"port"`
			} `yaml:"monitor"`
		} `yaml:"config"`
	}
	decodeInto(t, natsValues, &v)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("config.cluster: enabled %v, replicas %d; want a 3-node cluster", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled {
		t.Errorf("config.jetstream: want JetStream with file storage on a persistent volume")
	}
	if s, _ := c.JetStream.Merge["sync_interval"].(string); s != "always" {
		t.Errorf("config.jetstream.merge.sync_interval is %v, want always", c.JetStream.Merge["sync_interval"])
	}
	if !c.Monitor.Enabled || c.Monitor.Port != 8222 {
		t.Errorf("config.monitor: want enabled on 8222 (KEDA and the exporter read it)")
	}
}

// workerFile is the part of a worker config the split checks need, read without the config
// package so that these checks do not depend on it.
type workerFile struct {
	NATS struct {
		URL        string `yaml:"url"`
		Partitions int    `yaml:"partitions"`
		Replicas   int    `yaml:"replicas"`
		Consumer   string `yaml:"consumer"`
	} `yaml:"nats"`
	Model  string `yaml:"model"`
	Worker struct {
		Partitions []int `yaml:"partitions"`
	} `yaml:"worker"`
	HTTP struct {
		Listen string `yaml:"listen"`
	} `yaml:"http"`
}

func (w workerFile) partitionCount() int {
	if w.NATS.Partitions == 0 {
		return 32
	}
	return w.NATS.Partitions
}

func (w workerFile) consumerPrefix() string {
	if w.NATS.Consumer == "" {
		return "scimflow"
	}
	return w.NATS.Consumer
}

// checkClusterConfig checks what every shipped worker config must say about NATS and HTTP.
func checkClusterConfig(t *testing.T, name string, w workerFile) {
	t.Helper()
	if w.NATS.URL == "" {
		t.Errorf("%s: nats.url is empty: the worker would start its own embedded server instead of using the cluster", name)
	}
	if w.NATS.Replicas != 3 {
		t.Errorf("%s: nats.replicas is %d, want 3", name, w.NATS.Replicas)
	}
	if len(w.Worker.Partitions) > 0 {
		t.Errorf("%s: worker.partitions %v: the shipped workers form a pool and share the partitions; a static split would need one config per worker", name, w.Worker.Partitions)
	}
	host, port, err := net.SplitHostPort(w.HTTP.Listen)
	if err != nil || port != "9090" || (host != "0.0.0.0" && host != "" && host != "::") {
		t.Errorf("%s: http.listen %q: want 0.0.0.0:9090 so probes and scrapes reach it", name, w.HTTP.Listen)
	}
}

// composeService is the part of a Compose service the checks need.
type composeService struct {
	Image      string   `yaml:"image"`
	Entrypoint []string `yaml:"entrypoint"`
	Command    []string `yaml:"command"`
	Volumes    []string `yaml:"volumes"`
	Profiles   []string `yaml:"profiles"`
	Scale      *int     `yaml:"scale"`
	Deploy     struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
}

// composeWorker is a worker service of the Compose file and the config it runs.
type composeWorker struct {
	service       string
	containerPath string // --config, inside the container
	hostPath      string // the file bound there, relative to deploy/
	svc           composeService
}

// hostPathOf maps a path inside a service's container to the file bound there from the
// repository, through the service's bind mounts; "" when no bind mount covers it.
func hostPathOf(svc composeService, containerPath string) string {
	best, bestDst := "", ""
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		src, dst := parts[0], parts[1]
		if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
			continue // a named volume
		}
		if containerPath != dst && !strings.HasPrefix(containerPath, dst+"/") {
			continue
		}
		if len(dst) > len(bestDst) {
			best, bestDst = filepath.Join(filepath.Dir(composeFile), src, strings.TrimPrefix(containerPath, dst)), dst
		}
	}
	return best
}

func composeWorkers(t *testing.T) ([]composeWorker, map[string]composeService) {
	t.Helper()
	var c struct {
		Services map[string]composeService `yaml:"services"`
	}
	decodeInto(t, composeFile, &c)
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", composeFile)
	}
	var out []composeWorker
	for name, svc := range c.Services {
		// Workers use the image's entrypoint (/worker) with the run command.
		if len(svc.Entrypoint) > 0 || len(svc.Command) == 0 || svc.Command[0] != "run" {
			continue
		}
		i := slices.Index(svc.Command, "--config")
		if i < 0 || i+1 >= len(svc.Command) {
			t.Errorf("service %s: worker run without --config FILE", name)
			continue
		}
		w := composeWorker{service: name, containerPath: svc.Command[i+1], svc: svc}
		w.hostPath = hostPathOf(svc, w.containerPath)
		if w.hostPath == "" {
			t.Errorf("service %s: --config %s is not bound from a file of the repository", name, w.containerPath)
			continue
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].service < out[j].service })
	return out, c.Services
}

// TestComposeWorkersFormAPool: the Compose workers (at least three) share one config with no
// partition split, reach the three NATS nodes, and find the example model through their mounts.
func TestComposeWorkersFormAPool(t *testing.T) {
	workers, services := composeWorkers(t)
	if len(workers) < 3 {
		t.Errorf("%d worker services, want at least 3", len(workers))
	}
	configs := map[string]bool{}
	for _, w := range workers {
		var wf workerFile
		decodeInto(t, w.hostPath, &wf)
		checkClusterConfig(t, w.service, wf)
		if !strings.Contains(wf.NATS.URL, "nats-1") || !strings.Contains(wf.NATS.URL, "nats-2") || !strings.Contains(wf.NATS.URL, "nats-3") {
			t.Errorf("service %s: nats.url %q does not list the three cluster nodes", w.service, wf.NATS.URL)
		}
		for _, node := range []string{"nats-1", "nats-2", "nats-3"} {
			if _, ok := services[node]; !ok {
				t.Errorf("nats.url names %s but the Compose file has no such service", node)
			}
		}
		// The model path must resolve, inside the container, to a bind mount of the example model.
		if filepath.IsAbs(wf.Model) || wf.Model == "" {
			t.Errorf("service %s: model %q: want a path relative to the config, valid in the container and here", w.service, wf.Model)
		} else {
			inContainer := path.Join(path.Dir(w.containerPath), wf.Model)
			switch got := hostPathOf(w.svc, inContainer); {
			case got == "":
				t.Errorf("service %s: model resolves to %s in the container, where nothing is bound from the repository", w.service, inContainer)
			case filepath.Clean(got) != filepath.FromSlash(modelFile):
				t.Errorf("service %s: model resolves to %s in the container, bound from %s; want %s", w.service, inContainer, got, modelFile)
			}
		}
		configs[w.hostPath] = true
	}
	if len(configs) != 1 {
		t.Errorf("the worker services read %d configs, want one shared by the pool: %v", len(configs), configs)
	}
}

// k8sObjects reads every manifest under deploy/k8s (but the Helm values) by kind/name.
func k8sObjects(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f := filepath.Join(k8sDir, e.Name())
		if e.IsDir() || !strings.HasSuffix(f, ".yaml") || f == filepath.FromSlash(natsValues) {
			continue
		}
		for _, d := range yamlDocs(t, f) {
			kind, _ := d["kind"].(string)
			meta, _ := d["metadata"].(map[string]any)
			name, _ := meta["name"].(string)
			out[kind+"/"+name] = d
		}
	}
	return out
}

// k8sManifest is the part of the worker's Kubernetes objects the checks need.
type k8sManifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas    int    `yaml:"replicas"`
		ServiceName string `yaml:"serviceName"`
		Selector    struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Spec struct {
				Containers []struct {
					Args           []string `yaml:"args"`
					LivenessProbe  k8sProbe `yaml:"livenessProbe"`
					ReadinessProbe k8sProbe `yaml:"readinessProbe"`
					Ports          []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// manifest re-decodes one object of k8sObjects into the typed view.
func manifest(t *testing.T, objs map[string]map[string]any, key string) k8sManifest {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		t.Fatalf("deploy/k8s has no %s", key)
	}
	data, err := yaml.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var m k8sManifest
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return m
}

const (
	k8sConfigDir = "/etc/scimflow/config"
	k8sModelDir  = "/etc/scimflow/models"
)

// TestK8sWorkersFormAPool: a Deployment whose pods all read the one config of the ConfigMap (no
// partition split: the pool shares them), and the pod spec mounts and probes what it describes.
func TestK8sWorkersFormAPool(t *testing.T) {
	objs := k8sObjects(t)
	sts := manifest(t, objs, "Deployment/scimflow-worker")
	cm := manifest(t, objs, "ConfigMap/scimflow-worker-config")

	if sts.Spec.Replicas < 2 {
		t.Errorf("Deployment replicas %d, want at least 2", sts.Spec.Replicas)
	}
	want := []string{"config.yaml"}
	var keys []string
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("ConfigMap keys %v, want the one config every pod reads: %v", keys, want)
	}

	for _, k := range keys {
		var wf workerFile
		if err := yaml.Unmarshal([]byte(cm.Data[k]), &wf); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		checkClusterConfig(t, k, wf)
		if got := path.Join(k8sConfigDir, wf.Model); got != k8sModelDir+"/cyberark.yaml" {
			t.Errorf("%s: model resolves to %s in the pod, want %s/cyberark.yaml", k, got, k8sModelDir)
		}
	}

	spec := sts.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !slices.Contains(c.Args, k8sConfigDir+"/config.yaml") {
		t.Errorf("container args %v do not read %s/config.yaml", c.Args, k8sConfigDir)
	}
	mounts := map[string]string{} // mount path → configMap name
	vols := map[string]string{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v.ConfigMap.Name
	}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = vols[m.Name]
	}
	if mounts[k8sConfigDir] != "scimflow-worker-config" || mounts[k8sModelDir] != "scimflow-model" {
		t.Errorf("mounts %v: want %s from scimflow-worker-config and %s from scimflow-model", mounts, k8sConfigDir, k8sModelDir)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %q/%q, want /healthz and /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	portOK := false
	for _, p := range c.Ports {
		if p.ContainerPort == 9090 && (c.LivenessProbe.HTTPGet.Port == p.Name || c.LivenessProbe.HTTPGet.Port == 9090) {
			portOK = true
		}
	}
	if !portOK {
		t.Errorf("the liveness probe does not target container port 9090 (http.listen)")
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("no memory limit")
	}

	pdb := manifest(t, objs, "PodDisruptionBudget/scimflow-worker")
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if sts.Spec.Selector.MatchLabels[k] != v {
			t.Errorf("the PodDisruptionBudget does not select the worker pods (%s=%s)", k, v)
		}
	}
	svc, ok := objs["Service/scimflow-worker"]
	if !ok {
		t.Fatalf("no Service scimflow-worker for the workers' metrics")
	}
	svcSpec, _ := svc["spec"].(map[string]any)
	selector, _ := svcSpec["selector"].(map[string]any)
	for k, v := range selector {
		if sts.Spec.Selector.MatchLabels[k] != v {
			t.Errorf("Service scimflow-worker does not select the worker pods (%s=%v)", k, v)
		}
	}
}

// TestKEDAScaledObject: one nats-jetstream trigger per partition consumer, scaling the worker
// Deployment between 1 and 4, kept out of kustomization.yaml (it needs KEDA's CRDs).
func TestKEDAScaledObject(t *testing.T) {
	raw, err := os.ReadFile(kedaFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "DO NOT APPLY") {
		t.Errorf("%s still says not to apply it: the pool scales", kedaFile)
	}
	var so struct {
		Kind string `yaml:"kind"`
		Spec struct {
			ScaleTargetRef struct {
				Kind string `yaml:"kind"`
				Name string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicaCount int `yaml:"minReplicaCount"`
			MaxReplicaCount int `yaml:"maxReplicaCount"`
			Triggers        []struct {
				Type     string            `yaml:"type"`
				Metadata map[string]string `yaml:"metadata"`
			} `yaml:"triggers"`
		} `yaml:"spec"`
	}
	decodeInto(t, kedaFile, &so)
	if so.Kind != "ScaledObject" || so.Spec.ScaleTargetRef.Kind != "Deployment" || so.Spec.ScaleTargetRef.Name != "scimflow-worker" {
		t.Errorf("want a ScaledObject of Deployment scimflow-worker, got %s of %s %s", so.Kind, so.Spec.ScaleTargetRef.Kind, so.Spec.ScaleTargetRef.Name)
	}
	if so.Spec.MinReplicaCount != 1 || so.Spec.MaxReplicaCount != 4 {
		t.Errorf("replicas %d..%d, want 1..4", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
	}

	// The consumers the workers create: <nats.consumer>-p<N> for every partition.
	cm := manifest(t, k8sObjects(t), "ConfigMap/scimflow-worker-config")
	want := map[string]bool{}
	for k, data := range cm.Data {
		var wf workerFile
		if err := yaml.Unmarshal([]byte(data), &wf); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		for p := range wf.partitionCount() {
			want[fmt.Sprintf("%s-p%d", wf.consumerPrefix(), p)] = true
		}
	}
	got := map[string]bool{}
	for i, tr := range so.Spec.Triggers {
		md := tr.Metadata
		if tr.Type != "nats-jetstream" || md["stream"] != "IDM_EVENTS" || md["natsServerMonitoringEndpoint"] == "" || md["lagThreshold"] == "" {
			t.Errorf("trigger %d: want a nats-jetstream trigger on IDM_EVENTS with an endpoint and lagThreshold, got %s %v", i, tr.Type, md)
		}
		if got[md["consumer"]] {
			t.Errorf("trigger %d: consumer %s appears twice", i, md["consumer"])
		}
		got[md["consumer"]] = true
	}
	for c := range want {
		if !got[c] {
			t.Errorf("no trigger for consumer %s", c)
		}
	}
	for c := range got {
		if !want[c] {
			t.Errorf("trigger for consumer %s, which no worker creates", c)
		}
	}

	kust, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(kust, &k); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(k.Resources, filepath.Base(kedaFile)) || slices.Contains(k.Resources, filepath.Base(natsValues)) {
		t.Errorf("kustomization.yaml must not apply %s or %s", filepath.Base(kedaFile), filepath.Base(natsValues))
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(k8sDir, r)); err != nil {
			t.Errorf("kustomization.yaml: %v", err)
		}
	}
}

// TestWorkerConfigsLoad loads every worker config we ship with the worker's own loader (schema,
// ${ENV} expansion, defaults, checks): the Compose ones in place, the Kubernetes ones in a folder
// laid out like the pod's /etc/scimflow.
func TestWorkerConfigsLoad(t *testing.T) {
	// Every config names deploy/examples/models/cyberark.yaml; config.Load reports it if missing.
	opt := config.Options{LookupEnv: lookupEnv}
	check := func(t *testing.T, file string) {
		t.Helper()
		cfg, err := config.Load(file, opt)
		if err != nil {
			t.Fatalf("config.Load: %v", err)
		}
		var wf workerFile
		decodeInto(t, file, &wf)
		if cfg.NATS.URL != wf.NATS.URL || cfg.NATS.Replicas != 3 || cfg.NATS.Partitions != wf.partitionCount() {
			t.Errorf("loaded nats section: url %q, replicas %d, partitions %d", cfg.NATS.URL, cfg.NATS.Replicas, cfg.NATS.Partitions)
		}
		if !slices.Equal(cfg.Worker.Partitions, wf.Worker.Partitions) {
			t.Errorf("loaded worker.partitions %v, file says %v", cfg.Worker.Partitions, wf.Worker.Partitions)
		}
		if _, err := os.Stat(cfg.Model); err != nil {
			t.Errorf("model: %v", err)
		}
	}

	workers, _ := composeWorkers(t)
	if len(workers) == 0 {
		t.Fatal("no worker services in the Compose file")
	}
	for _, w := range workers {
		t.Run("compose/"+w.service, func(t *testing.T) { check(t, w.hostPath) })
	}

	// The pod's layout: /etc/scimflow/config/<key> and /etc/scimflow/models/cyberark.yaml.
	cm := manifest(t, k8sObjects(t), "ConfigMap/scimflow-worker-config")
	root := t.TempDir()
	for _, d := range []string{"config", "models"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if model, err := os.ReadFile(modelFile); err == nil {
		if err := os.WriteFile(filepath.Join(root, "models", "cyberark.yaml"), model, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for k, data := range cm.Data {
		file := filepath.Join(root, "config", k)
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run("k8s/"+k, func(t *testing.T) { check(t, file) })
	}
}

var (
	scimflowMetric = regexp.MustCompile(`\bscimflow_[a-z0-9_]*[a-z0-9]`)
)

// jsonStrings collects every string of a decoded JSON value.
func jsonStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		for _, e := range x {
			jsonStrings(e, out)
		}
	case map[string]any:
		for _, e := range x {
			jsonStrings(e, out)
		}
	}
}

// TestDashboardMetrics: the dashboard queries only scimflow_* metrics the worker exports
// (internal/metrics.Families), covers all of them, reads consumer lag from the NATS exporter, and takes its data
// source as the ${DS_PROMETHEUS} input.
func TestDashboardMetrics(t *testing.T) {
	exported := map[string]bool{}
	series := map[string]bool{} // names a query may use: a histogram's _bucket, _sum and _count
	for _, f := range metrics.Families {
		exported[f.Name], series[f.Name] = true, true
		if f.Type == "histogram" {
			series[f.Name+"_bucket"], series[f.Name+"_sum"], series[f.Name+"_count"] = true, true, true
		}
	}
	if len(exported) == 0 {
		t.Fatal("internal/metrics declares no family")
	}

	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Inputs []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource *struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Name != "DS_PROMETHEUS" || dash.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs: want the single Prometheus data source input DS_PROMETHEUS, got %+v", dash.Inputs)
	}
	exprs := ""
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: data source is not ${DS_PROMETHEUS}", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Datasource != nil && q.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: a query's data source is not ${DS_PROMETHEUS}", p.Title)
			}
			exprs += q.Expr + "\n"
		}
	}

	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var all []string
	jsonStrings(doc, &all)
	used := map[string]bool{}
	for _, s := range all {
		for _, m := range scimflowMetric.FindAllString(s, -1) {
			if !series[m] && !used[m] {
				t.Errorf("the dashboard names %s, which the worker does not export (internal/metrics.Families)", m)
			}
			used[m] = true
		}
	}
	for m := range exported {
		if !strings.Contains(exprs, m) {
			t.Errorf("no dashboard query uses %s", m)
		}
	}
	if !strings.Contains(exprs, "jetstream_consumer_num_pending") {
		t.Errorf("no dashboard query reads the consumer lag (jetstream_consumer_num_pending)")
	}
}

// TestK8sManifestsMatchTheirSchemas decodes every Kubernetes object we ship into its type from
// k8s.io/api, strictly: an unknown or misspelt field, or a value of the wrong type, fails, as the
// API server's validation would. (The KEDA ScaledObject is a custom resource: TestKEDAScaledObject
// checks it; kustomization.yaml and the Helm values are not API objects.)
func TestK8sManifestsMatchTheirSchemas(t *testing.T) {
	types := map[string]func() any{
		"Namespace":           func() any { return &corev1.Namespace{} },
		"ConfigMap":           func() any { return &corev1.ConfigMap{} },
		"Secret":              func() any { return &corev1.Secret{} },
		"Service":             func() any { return &corev1.Service{} },
		"Deployment":          func() any { return &appsv1.Deployment{} },
		"PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
	}
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]int{}
	for _, e := range entries {
		f := filepath.Join(k8sDir, e.Name())
		if e.IsDir() || !strings.HasSuffix(f, ".yaml") || f == filepath.FromSlash(natsValues) || e.Name() == "kustomization.yaml" {
			continue
		}
		for i, d := range yamlDocs(t, f) {
			kind, _ := d["kind"].(string)
			if kind == "ScaledObject" {
				continue
			}
			mk, ok := types[kind]
			if !ok {
				t.Errorf("%s document %d: kind %q has no schema check here", f, i, kind)
				continue
			}
			raw, err := yaml.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := sigsyaml.UnmarshalStrict(raw, mk()); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i, kind, err)
			}
			checked[kind]++
		}
	}
	for kind := range types {
		if checked[kind] == 0 {
			t.Errorf("no %s checked: has a manifest gone?", kind)
		}
	}
	// The Deployment's pod template carries the labels its selector asks for.
	var dep appsv1.Deployment
	raw, err := os.ReadFile(filepath.Join(k8sDir, "worker-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.UnmarshalStrict(raw, &dep); err != nil {
		t.Fatal(err)
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("the Deployment's selector %s=%s does not match its pod template", k, v)
		}
	}
}

// TestComposeFileIsValid loads the Compose file the way `docker compose config` does (compose-go:
// the Compose Specification's JSON schema, interpolation, merges, profiles), with the demo and
// monitoring profiles on, and checks what it resolves to.
func TestComposeFileIsValid(t *testing.T) {
	opts, err := composecli.NewProjectOptions([]string{composeFile},
		composecli.WithWorkingDirectory(filepath.Dir(composeFile)),
		composecli.WithProfiles([]string{"demo", "monitoring"}),
		composecli.WithName("scimflow"),
	)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker compose config would refuse %s: %v", composeFile, err)
	}
	workers := 0
	for name, svc := range project.Services {
		if strings.HasPrefix(name, "worker-") {
			workers++
			if svc.Restart != "on-failure" {
				t.Errorf("service %s: restart %q, want on-failure", name, svc.Restart)
			}
		}
	}
	if workers < 3 {
		t.Errorf("%d worker services resolved, want 3", workers)
	}
	for _, want := range []string{"nats-1", "nats-2", "nats-3", "cyberark-sim", "publisher", "nats-exporter", "prometheus"} {
		if _, ok := project.Services[want]; !ok {
			t.Errorf("no service %s once the profiles are on", want)
		}
	}
}
