package commands

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/store"
)

// completionTimeout bounds how long a shell completion may spend reading
// a store: a completion that hangs the shell is worse than none.
const completionTimeout = 2 * time.Second

// errEnoughFamilies stops a completion scan once the list is long enough
// to be useless on a terminal.
var errEnoughFamilies = errors.New("enough families")

// maxCompletedFamilies caps the family names one completion offers.
const maxCompletedFamilies = 1000

// completeFamilies returns a flag completion function listing the family
// names of the store that the store flags already on the command line (or
// the environment) select, e.g. for `promstore dump --dir d --match <TAB>`.
// It is silent: any problem (no store, unreadable shards, a Redis server
// that does not answer within completionTimeout) yields what was read so
// far, possibly nothing, and never a message.
func completeFamilies(f *Factory, sf *StoreFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, completionTimeout)
		defer cancel()
		return familyCompletions(ctx, f, sf, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// familyCompletions lists "name\tkind: help" for every family whose name
// starts with prefix, sorted by name.
func familyCompletions(ctx context.Context, f *Factory, sf *StoreFlags, prefix string) []cobra.Completion {
	// Keep a slow Redis from outliving the completion deadline.
	if sf.Redis.Timeout <= 0 || sf.Redis.Timeout > completionTimeout {
		sf.Redis.Timeout = completionTimeout
	}
	small := *f
	small.PrepareHeap = nil // a completion reads a few families, at once
	st, err := sf.Open(ctx, &small)
	if err != nil {
		return nil
	}
	defer st.Close()
	desc := map[string]string{}
	_ = st.Scan(ctx, func(s store.Sample) error {
		if s.Key == nil || !strings.HasPrefix(s.Key.Family, prefix) {
			return nil
		}
		if _, seen := desc[s.Key.Family]; seen {
			return nil
		}
		if len(desc) >= maxCompletedFamilies {
			return errEnoughFamilies
		}
		desc[s.Key.Family] = completionDescription(s.Shard.Kind, s.Key.Help)
		return ctx.Err()
	})
	names := make([]string, 0, len(desc))
	for n := range desc {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]cobra.Completion, len(names))
	for i, n := range names {
		out[i] = cobra.CompletionWithDesc(n, desc[n])
	}
	return out
}

// completionDescription is the one-line description a shell shows beside
// a family name: its kind and the first line of its help.
func completionDescription(kind store.Kind, help string) string {
	help, _, _ = strings.Cut(help, "\n")
	help = strings.Map(func(r rune) rune {
		if r == '\t' || r < ' ' {
			return ' '
		}
		return r
	}, help)
	const maxLen = 60
	if r := []rune(help); len(r) > maxLen {
		help = string(r[:maxLen-1]) + "…"
	}
	if help == "" {
		return string(kind)
	}
	return string(kind) + ": " + help
}
