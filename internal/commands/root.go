// Package commands is promstore's command tree. Each command has an
// Options struct, a NewCmdX constructor taking a run function (so flag
// parsing is testable on its own) and an xRun function doing the work.
// Main is the only place that maps errors to exit codes.
package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/hugeheap"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// Factory carries what commands need from the outside world, so tests can
// replace it.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string
	Now    func() time.Time
	// PrepareHeap, when set, is called before a store is opened to be
	// read (hugeheap.Prepare in the real process; see prepareHeap).
	PrepareHeap func()
}

// NewFactory returns a Factory wired to the real process environment.
func NewFactory() *Factory {
	return &Factory{IO: SystemIO(), Getenv: os.Getenv, Now: time.Now, PrepareHeap: hugeheap.Prepare}
}

// prepareHeap readies the process's heap for reading a store when
// PROMSTORE_HUGE_PAGES=on: a read of a large store grows hundreds of MiB
// of heap in a second (see hugeheap.Prepare). It is off by default: on a
// virtual machine that hands free memory back to its host (free page
// reporting), huge pages come from exactly the blocks handed back, and a
// dump after a pause took a fifth longer with them (README, Performance).
func (f *Factory) prepareHeap() {
	if f.PrepareHeap != nil && f.Getenv("PROMSTORE_HUGE_PAGES") == "on" {
		f.PrepareHeap()
	}
}

// usageError marks an error as a usage error (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// UsageErrorf returns a usage error (exit status 2).
func UsageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// stopFailure marks an error a command met while stopping on a signal
// as it was asked to (serve's scrapes cut off at the end of the grace):
// it exits 1, as the command's help says, not 130.
type stopFailure struct{ err error }

func (e *stopFailure) Error() string { return e.err.Error() }
func (e *stopFailure) Unwrap() error { return e.err }

// troubleError is an error of a command whose exit status 1 means an
// answer (diff: the sources differ): it exits 2, as diff(1) does for
// trouble, without the usage hint.
type troubleError struct{ err error }

func (e *troubleError) Error() string { return e.err.Error() }
func (e *troubleError) Unwrap() error { return e.err }

// errSilent is returned when the command already reported what went wrong
// and only the exit status is left to set.
var errSilent = errors.New("silent failure")

// NewRootCmd builds the whole command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "promstore",
		Short: "Inspect, dump, migrate and clean up Python Prometheus multiprocess metric stores",
		Long: `promstore reads the stores Python programs write with prometheus_client in
multiprocess mode: a PROMETHEUS_MULTIPROC_DIR full of *.db shard files, or the
gunicorn-prometheus-exporter layout in Redis. It aggregates them exactly as
Python's MultiProcessCollector does.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version, as Prometheus and its exporters have it, prints
		// what 'promstore version' does.
		Version: BuildVersion().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetIn(f.IO.In)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err}
	})
	root.AddCommand(
		NewCmdDump(f, nil),
		NewCmdVersion(f, nil),
		NewCmdTop(f, nil),
		NewCmdMigrate(f, nil),
		NewCmdServe(f, nil),
		NewCmdLs(f, nil),
		NewCmdCleanup(f, nil),
		NewCmdDiff(f, nil),
		NewCmdFsck(f, nil),
		NewCmdAnalyze(f, nil),
	)
	root.InitDefaultCompletionCmd()
	rejectUnknownSubcommands(root)
	rejectUnknownHelpTopics(root)
	return root
}

// rejectUnknownHelpTopics makes `promstore help dumb` a usage error
// (exit 2), as `promstore dumb` is: cobra's help command prints "Unknown
// help topic" and the root's usage, and exits 0.
func rejectUnknownHelpTopics(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	help, _, err := root.Find([]string{"help"})
	if err != nil || help == root || help.Run == nil {
		return
	}
	run := help.Run
	help.Run = nil
	help.RunE = func(c *cobra.Command, args []string) error {
		if cmd, _, err := c.Root().Find(args); cmd == nil || err != nil {
			return UsageErrorf("unknown help topic %q", strings.Join(args, " "))
		}
		run(c, args)
		return nil
	}
}

// rejectUnknownSubcommands makes every command that only groups others
// (migrate, completion) print its help when run alone and reject any
// other word as an unknown command (exit 2): cobra would print the help
// and exit 0 for `promstore migrate sideways`.
func rejectUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
		c.Args = noArgs
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
}

// Main runs promstore with the process's arguments and returns the exit
// status.
func Main() int {
	// SIGHUP too: the default action ends the process at once, leaving a
	// terminal top has in raw mode so.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	f := NewFactory()
	return Execute(ctx, f, os.Args[1:])
}

// Execute runs the command tree with args and maps the outcome to an exit
// status, printing the error (if any) to f.IO.ErrOut.
func Execute(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	path := root.Name()
	if cmd != nil {
		path = cmd.CommandPath()
	}
	return exitCode(ctx, f, err, path)
}

// exitCode prints err and returns its exit status; path is the command
// that met it, whose help a usage error points to.
func exitCode(ctx context.Context, f *Factory, err error, path string) int {
	if err == nil {
		return ExitOK
	}
	var sf *stopFailure
	if errors.As(err, &sf) {
		fmt.Fprintf(f.IO.ErrOut, "promstore: %v\n", err)
		return ExitError
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		fmt.Fprintln(f.IO.ErrOut, "promstore: interrupted")
		return ExitInterrupted
	}
	if errors.Is(err, errSilent) {
		return ExitError
	}
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(f.IO.ErrOut, "promstore: %v\nRun '%s --help' for usage.\n", err, path)
		return ExitUsage
	}
	fmt.Fprintf(f.IO.ErrOut, "promstore: %v\n", err)
	var te *troubleError
	if errors.As(err, &te) {
		return ExitUsage
	}
	return ExitError
}

// usageArgs wraps a cobra argument validator so that the arguments it
// rejects are a usage error (exit status 2).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// noArgs is cobra.NoArgs giving a usage error.
var noArgs = usageArgs(cobra.NoArgs)

// isCobraUsage recognises the one usage error cobra returns as a plain
// error, where none of promstore's validators run: a command name the
// tree does not know (`promstore dumb`). Flag
// errors come typed through the FlagErrorFunc, argument counts through
// usageArgs; any other error, even one reading "invalid argument" (EINVAL),
// is not a usage error.
func isCobraUsage(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command \"")
}
