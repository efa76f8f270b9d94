package commands

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/pyclient"
)

// pythonClientFlag is --python-client, shared by the commands that print
// or serve exposition text.
type pythonClientFlag struct{ raw string }

// register adds --python-client to cmd, with completion of the releases
// whose output differs from the one before.
func (p *pythonClientFlag) register(cmd *cobra.Command) {
	what := "aggregate and spell floats"
	if cmd.Name() == "serve" {
		what = "aggregate, spell floats and negotiate formats"
	}
	cmd.Flags().StringVar(&p.raw, "python-client", "latest",
		what+" as this prometheus_client release does: "+strings.Join(pyclient.Known, ", ")+" (any 0.16 to "+pyclient.Latest.String()+"), or latest")
	_ = cmd.RegisterFlagCompletionFunc("python-client", cobra.FixedCompletions(append(append([]string{}, pyclient.Known...), "latest"), cobra.ShellCompDirectiveNoFileComp))
}

// version parses the flag; a bad value is a usage error.
func (p *pythonClientFlag) version() (pyclient.Version, error) {
	v, err := pyclient.Parse(p.raw)
	if err != nil {
		return v, UsageErrorf("--python-client: %v", err)
	}
	return v, nil
}
