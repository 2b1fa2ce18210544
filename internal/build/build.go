// Package build reports which owlmetry binary is running. Release builds set the
// variables with -ldflags; other builds fall back to the module build information.
package build

import (
	"runtime"
	"runtime/debug"
	"time"
)

// These are set at link time by release builds:
//
//	-X github.com/owlmetry/owlmetry/internal/build.Version=0.4.0
var (
	// Version is the release version without a leading "v". Empty in development builds.
	Version = ""
	// Commit is the short git commit the binary was built from.
	Commit = ""
	// Date is the RFC 3339 UTC build time.
	Date = ""
)

// Info describes the running binary.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// Current returns the build information of this binary. Values not set by ldflags come
// from debug.ReadBuildInfo: the module version (or "dev" for a (devel) build) and the VCS
// revision and time when the toolchain recorded them.
func Current() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if info.Version == "" {
		info.Version = "dev"
		if ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = trimV(bi.Main.Version)
		}
	}
	if ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = shortCommit(s.Value)
				}
			case "vcs.time":
				if info.Date == "" {
					if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
						info.Date = t.UTC().Format(time.RFC3339)
					}
				}
			}
		}
	}
	return info
}

func trimV(v string) string {
	if len(v) > 1 && v[0] == 'v' {
		return v[1:]
	}
	return v
}

func shortCommit(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}
