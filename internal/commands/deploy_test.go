package commands

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/promstore/promstore/internal/testenv"
)

// k8sDeployment is the part of a Deployment the sidecar recipe relies on.
type k8sDeployment struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				ShareProcessNamespace bool `yaml:"shareProcessNamespace"`
				Volumes               []struct {
					Name     string    `yaml:"name"`
					EmptyDir *struct{} `yaml:"emptyDir"`
				} `yaml:"volumes"`
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

// TestKubernetesSidecarManifest parses deploy/kubernetes/sidecar.yaml
// and checks the recipe holds together: one pid namespace, the app's
// PROMETHEUS_MULTIPROC_DIR on an emptyDir that promstore mounts at the
// same path, promstore's arguments accepted by `promstore serve` as they
// stand (with compaction on and a port the scrape annotation names), and
// resources on both containers.
func TestKubernetesSidecarManifest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "kubernetes", "sidecar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(false)
	var d k8sDeployment
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("sidecar.yaml: %v", err)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Fatalf("sidecar.yaml is %s %s, want apps/v1 Deployment", d.APIVersion, d.Kind)
	}
	ps := d.Spec.Template.Spec
	if !ps.ShareProcessNamespace {
		t.Error("shareProcessNamespace is not true: the sidecar could not tell live workers from dead ones")
	}
	var app, sidecar *k8sContainer
	for i := range ps.Containers {
		c := &ps.Containers[i]
		if strings.Contains(c.Image, "promstore") {
			sidecar = c
		} else {
			app = c
		}
		if len(c.Resources.Requests) == 0 || c.Resources.Limits["memory"] == "" {
			t.Errorf("container %s has no resource requests or memory limit", c.Name)
		}
	}
	if app == nil || sidecar == nil {
		t.Fatalf("want an app container and a promstore container, have %d containers", len(ps.Containers))
	}
	dir := ""
	for _, e := range app.Env {
		if e.Name == "PROMETHEUS_MULTIPROC_DIR" {
			dir = e.Value
		}
	}
	mountOf := func(c *k8sContainer, path string) string {
		for _, m := range c.VolumeMounts {
			if m.MountPath == path {
				return m.Name
			}
		}
		return ""
	}
	vol := mountOf(app, dir)
	if dir == "" || vol == "" || mountOf(sidecar, dir) != vol {
		t.Fatalf("the app's PROMETHEUS_MULTIPROC_DIR %q is not one volume mounted at the same path in both containers", dir)
	}
	if !slices.ContainsFunc(ps.Volumes, func(v struct {
		Name     string    `yaml:"name"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	}) bool {
		return v.Name == vol && v.EmptyDir != nil
	}) {
		t.Errorf("volume %s is not an emptyDir", vol)
	}

	// The sidecar's arguments as `promstore serve` parses them.
	if len(sidecar.Args) == 0 || sidecar.Args[0] != "serve" {
		t.Fatalf("promstore args %v: want serve ...", sidecar.Args)
	}
	f, _, _ := serveFactory(nil)
	var got *ServeOptions
	cmd := NewCmdServe(f, func(ctx context.Context, o *ServeOptions) error {
		got = o
		return nil
	})
	root := NewRootCmd(f)
	root.RemoveCommand(findCmd(root, "serve"))
	root.AddCommand(cmd)
	root.SetArgs(sidecar.Args)
	if err := root.ExecuteContext(context.Background()); err != nil || got == nil {
		t.Fatalf("promstore %v: %v", sidecar.Args, err)
	}
	if got.CompactEvery <= 0 {
		t.Error("the sidecar does not compact (--compact-every)")
	}
	if dirFlag, _ := cmd.Flags().GetString("dir"); dirFlag != dir {
		t.Errorf("promstore --dir %q, app writes to %q", dirFlag, dir)
	}
	port := d.Spec.Template.Metadata.Annotations["prometheus.io/port"]
	if len(got.ListenAddresses) != 1 || !strings.HasSuffix(got.ListenAddresses[0], ":"+port) {
		t.Errorf("promstore listens on %v, the scrape annotation names port %q", got.ListenAddresses, port)
	}
	if !slices.ContainsFunc(sidecar.Ports, func(p struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}) bool {
		return port != "" && p.ContainerPort > 0 && port == strconv.Itoa(p.ContainerPort)
	}) {
		t.Errorf("the promstore container does not expose port %s", port)
	}
}

// TestContainerImageDefinition: goreleaser.yaml's image is built from
// deploy/Dockerfile, which copies the binary goreleaser stages per
// platform and runs it. (No Docker engine runs in CI: `make
// release-check` validates the definition, this checks the parts fit.)
func TestContainerImageDefinition(t *testing.T) {
	root := testenv.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Builds []struct {
			ID     string   `yaml:"id"`
			Binary string   `yaml:"binary"`
			Env    []string `yaml:"env"`
		} `yaml:"builds"`
		Dockers []struct {
			IDs        []string `yaml:"ids"`
			Dockerfile string   `yaml:"dockerfile"`
			Platforms  []string `yaml:"platforms"`
		} `yaml:"dockers_v2"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("goreleaser.yaml: %v", err)
	}
	if len(cfg.Dockers) != 1 || len(cfg.Builds) == 0 {
		t.Fatalf("goreleaser.yaml: %d images, %d builds", len(cfg.Dockers), len(cfg.Builds))
	}
	img := cfg.Dockers[0]
	build := cfg.Builds[0]
	if !slices.Contains(img.IDs, build.ID) || !slices.Contains(build.Env, "CGO_ENABLED=0") {
		t.Errorf("the image takes builds %v; build %s must be among them and static (CGO_ENABLED=0): %v", img.IDs, build.ID, build.Env)
	}
	if !slices.Contains(img.Platforms, "linux/amd64") {
		t.Errorf("image platforms %v lack linux/amd64", img.Platforms)
	}
	df, err := os.ReadFile(filepath.Join(root, img.Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	text := string(df)
	for _, want := range []string{"COPY $TARGETPLATFORM/" + build.Binary + " ", "ENTRYPOINT [\"/usr/bin/" + build.Binary + "\"]", "USER 65534"} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q", img.Dockerfile, want)
		}
	}
}
