package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContainerdPullAndUnpack pushes a valid image and one whose config
// claims a wrong diff_id, and checks that containerd's unpack accepts the
// first and reports the second.
func TestContainerdPullAndUnpack(t *testing.T) {
	start := time.Now()
	ctrd := StartContainerd(t)
	t.Logf("StartContainerd took %v", time.Since(start))
	if len(ctrd.Address) >= 108 {
		t.Errorf("socket path too long for sun_path: %q", ctrd.Address)
	}
	if out := ctrd.Ctr(t, "version"); !strings.Contains(out, "Server:") {
		t.Errorf("ctr version: %q", out)
	}
	reg := StartRegistry(t)

	good := buildTinyImage(t, map[string]string{"etc/hello.txt": "hello from fmtconv\n"}, "")
	pushTinyImage(t, reg, "ctrd/good", "v1", good)
	if err := ctrd.PullAndUnpack(t, reg.Ref("ctrd/good", "v1")); err != nil {
		t.Fatalf("pull and unpack of a valid image: %v", err)
	}
	if out := ctrd.Ctr(t, "image", "ls", "-q"); !strings.Contains(out, reg.ImageName("ctrd/good", "v1")) {
		t.Errorf("image not listed after pull: %q", out)
	}
	rootfs := ctrd.MountImage(t, reg.ImageName("ctrd/good", "v1"))
	data, err := os.ReadFile(filepath.Join(rootfs, "etc", "hello.txt"))
	if err != nil || string(data) != "hello from fmtconv\n" {
		t.Errorf("mounted rootfs: %q, %v", data, err)
	}

	wrong := "sha256:" + strings.Repeat("0", 64)
	bad := buildTinyImage(t, map[string]string{"etc/hello.txt": "another layer\n"}, wrong)
	pushTinyImage(t, reg, "ctrd/bad", "v1", bad)
	err = ctrd.PullAndUnpack(t, reg.ImageName("ctrd/bad", "v1"))
	if err == nil {
		t.Fatal("pull and unpack of an image with a wrong diff_id succeeded")
	}
	if !strings.Contains(err.Error(), "wrong diff id calculated on extraction") {
		t.Errorf("error does not name the diff id problem: %v", err)
	}
	t.Logf("expected error: %v", err)
}

// TestContainerdCleanup checks that a stopped instance leaves nothing
// behind: no process, no mounts, no directory.
func TestContainerdCleanup(t *testing.T) {
	RequireTool(t, "containerd", "ctr")
	var ctrd *Containerd
	t.Run("run", func(t *testing.T) {
		ctrd = StartContainerd(t)
		reg := StartRegistry(t)
		pushTinyImage(t, reg, "c/img", "v1", buildTinyImage(t, map[string]string{"f": "x"}, ""))
		if err := ctrd.PullAndUnpack(t, reg.ImageName("c/img", "v1")); err != nil {
			t.Fatal(err)
		}
		ctrd.MountImage(t, reg.ImageName("c/img", "v1"))
	})
	if ctrd == nil {
		t.Skip("subtest did not start containerd")
	}
	select {
	case <-ctrd.exited:
	default:
		t.Errorf("containerd still running after cleanup")
	}
	if _, err := os.Stat(ctrd.Dir); !os.IsNotExist(err) {
		t.Errorf("containerd directory %s still exists: %v", ctrd.Dir, err)
	}
	mounts, err := mountsUnder(ctrd.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 0 {
		t.Errorf("mounts left under %s: %v", ctrd.Dir, mounts)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a`:          "/tmp/a",
		`/tmp/a\040b`:     "/tmp/a b",
		`/tmp/x\134y`:     `/tmp/x\y`,
		`/tmp/trail\04`:   `/tmp/trail\04`,
		`/tmp/not\0x9oct`: `/tmp/not\0x9oct`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
