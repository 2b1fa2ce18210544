package arch

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/owlmetry/owlmetry/"

// layer of each internal package family (style §2). A package imports only from layers
// strictly below its own, except within its own family.
var layers = []struct {
	prefix string
	layer  int
}{
	{"cmd/owlmetry", 8},
	{"internal/commands", 7},
	{"internal/cmdutil", 6},
	{"internal/devstack", 6},
	{"internal/client", 5},
	{"internal/follow", 5},
	{"internal/tui", 5},
	{"internal/localjobs", 5},
	{"internal/server", 5},
	{"internal/jobs", 4},
	{"internal/engine", 3},
	{"internal/notify", 2},
	{"internal/config", 1},
	{"internal/iostreams", 1},
	{"internal/db", 1},
	{"internal/credentials", 1},
	{"internal/upstream", 1},
	{"internal/emulator", 1},
	{"internal/pgcluster", 1},
	{"internal/metrics", 0},
	{"internal/apitype", 0},
	{"internal/apikey", 0},
	{"internal/jobtype", 0},
	{"internal/build", 0},
}

// forbidden are the narrower rules: importer prefix → imported prefixes it must avoid.
var forbidden = map[string][]string{
	"internal/follow":      {"internal/client", "internal/localjobs", "internal/tui"},
	"internal/tui":         {"internal/client", "internal/localjobs", "internal/engine"},
	"internal/client":      {"internal/iostreams", "internal/tui", "internal/db", "github.com/spf13/cobra", "github.com/spf13/viper"},
	"internal/upstream":    {"internal/db", "internal/engine", "internal/emulator"},
	"internal/emulator":    {"internal/upstream"},
	"internal/server":      {"internal/client", "internal/tui", "github.com/spf13/cobra"},
	"internal/localjobs":   {"internal/iostreams", "internal/tui", "internal/client", "github.com/spf13/cobra"},
	"internal/engine":      {"internal/jobs", "internal/server", "internal/commands"},
	"internal/jobs":        {"internal/server", "internal/commands"},
	"internal/devstack":    {"internal/commands", "github.com/spf13/cobra"},
	"internal/credentials": {"internal/"},
	"internal/config":      {"internal/"},
	"internal/iostreams":   {"internal/"},
	"internal/build":       {"internal/"},
}

// testOnly packages are never imported by non-test code.
var testOnly = []string{"internal/pgtest", "internal/owltest"}

func layerOf(rel string) (string, int, bool) {
	for _, l := range layers {
		if rel == l.prefix || strings.HasPrefix(rel, l.prefix+"/") {
			return l.prefix, l.layer, true
		}
	}
	return "", 0, false
}

func TestImportLayers(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	var problems []string
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "testdata" || strings.HasPrefix(name, ".") || name == "bench" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		relFile, _ := filepath.Rel(root, path)
		rel := filepath.ToSlash(filepath.Dir(relFile))
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		family, layer, known := layerOf(rel)
		isTestOnly := false
		for _, p := range testOnly {
			if rel == p || strings.HasPrefix(rel, p+"/") {
				isTestOnly = true
			}
		}
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			target := strings.TrimPrefix(ip, module)
			for _, p := range testOnly {
				if !isTestOnly && (target == p || strings.HasPrefix(target, p+"/")) {
					problems = append(problems, relFile+" imports test-only "+target)
				}
			}
			for prefix, bad := range forbidden {
				if rel != prefix && !strings.HasPrefix(rel, prefix+"/") {
					continue
				}
				for _, b := range bad {
					if strings.HasPrefix(target, b) && !strings.HasPrefix(target, prefix) && target != ip {
						problems = append(problems, relFile+" must not import "+target)
					}
					if strings.HasPrefix(ip, b) && strings.HasPrefix(b, "github.com/") {
						problems = append(problems, relFile+" must not import "+ip)
					}
				}
			}
			if !known || isTestOnly || target == ip {
				continue
			}
			tfam, tlayer, tknown := layerOf(target)
			if !tknown || tfam == family {
				continue
			}
			if tlayer >= layer {
				problems = append(problems, relFile+" (layer "+itoa(layer)+") imports "+target+" (layer "+itoa(tlayer)+")")
			}
		}
		return nil
	})
	require.NoError(t, err)
	sort.Strings(problems)
	require.Empty(t, problems, "import rules of docs/style.md §2 broken")
}

// Below Main, nothing reads the process environment or exits (style §3).
func TestNoProcessGlobalsBelowMain(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	allowed := map[string]bool{
		"cmd/owlmetry/main.go":                    true,
		"internal/commands/main.go":               true,
		"internal/iostreams/iostreams.go":         true,
		"internal/pgcluster/pgcluster.go":         true,
		"internal/pgtest/pgtest.go":               true,
		"internal/pgtest/cmd/testcluster/main.go": true,
	}
	var problems []string
	err = filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if allowed[rel] || strings.HasPrefix(rel, "internal/owltest/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(line, "//")
			for _, bad := range []string{"os.Exit(", "os.Getenv(", "os.LookupEnv(", "os.Args"} {
				if strings.Contains(code, bad) {
					problems = append(problems, rel+":"+itoa(i+1)+": "+strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, problems, "process globals are read only at the top (style §3)")
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
