package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// imageEntry maps a container image to a local command, standing in for the image's
// ENTRYPOINT/CMD/ENV/WORKDIR. The pod's command/args override them as Kubernetes specifies.
type imageEntry struct {
	// Match is an exact image reference, or a prefix ending in "*" (e.g. "registry.k8s.io/x:*").
	Match      string            `json:"match"`
	Entrypoint []string          `json:"entrypoint"`
	Cmd        []string          `json:"cmd"`
	Env        map[string]string `json:"env"`
	WorkingDir string            `json:"workingDir"`
	// Dirs are private per-pod directories mounted at the given path, populated with symlinks
	// (name → host path): how an image's writable /app with node_modules is reproduced.
	Dirs map[string]map[string]string `json:"dirs"`
	// Binds are host paths bind-mounted read-only into the container's mount namespace.
	Binds map[string]string `json:"binds"`
}

type imageTable struct{ entries []imageEntry }

func loadImages(files []string) (*imageTable, error) {
	t := &imageTable{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("image table %s: %w", f, err)
		}
		var doc struct {
			Images []imageEntry `json:"images"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("image table %s: %w", f, err)
		}
		// Later files take precedence: prepend so the first match wins.
		t.entries = append(append([]imageEntry{}, doc.Images...), t.entries...)
	}
	return t, nil
}

func (t *imageTable) lookup(image string) (imageEntry, bool) {
	for _, e := range t.entries {
		if p, ok := strings.CutSuffix(e.Match, "*"); ok {
			if strings.HasPrefix(image, p) {
				return e, true
			}
		} else if e.Match == image {
			return e, true
		}
	}
	return imageEntry{}, false
}
