package commands

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the release build with -ldflags "-X ...".
var (
	version = ""
	commit  = ""
	date    = ""
)

// VersionInfo describes this build.
type VersionInfo struct {
	Version, Commit, Date, Go string
}

// BuildVersion returns the version injected at link time, falling back to
// the module build info (go install pkg@version, or VCS stamping).
func BuildVersion() VersionInfo {
	v := VersionInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				if v.Date == "" {
					v.Date = s.Value
				}
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

// String formats the version as `promstore version` prints it.
func (v VersionInfo) String() string {
	s := "promstore " + v.Version
	if v.Commit != "" {
		c := v.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " (commit " + c
		if v.Date != "" {
			s += ", built " + v.Date
		}
		s += ")"
	}
	return s + " " + v.Go + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// VersionOptions are the inputs of `promstore version`.
type VersionOptions struct {
	IO *IOStreams
}

// NewCmdVersion builds `promstore version`.
func NewCmdVersion(f *Factory, runF func(context.Context, *VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IO}
	return &cobra.Command{
		Use:   "version",
		Short: "Print promstore's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			_, err := fmt.Fprintln(opts.IO.Out, BuildVersion().String())
			return err
		},
	}
}
