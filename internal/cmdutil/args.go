package cmdutil

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// ExactArgs requires n positional arguments and names what they are in the usage error.
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			if len(args) < n {
				return FlagErrorf("missing %s", what)
			}
			return FlagErrorf("expected %s, got %d arguments: %s", what, len(args), strings.Join(args, " "))
		}
		return nil
	}
}

// NoArgs refuses positional arguments.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("unexpected argument %q", args[0])
	}
	return nil
}

// ParseUUID validates and lower-cases an id once, at the edge (style §6).
func ParseUUID(name, value string) (string, error) {
	id, ok := jobtype.ParseUUID(strings.TrimSpace(value))
	if !ok {
		return "", FlagErrorf("invalid %s %q: must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", name, value)
	}
	return id, nil
}

// ParseJobType validates a job type name against the registry.
func ParseJobType(value string) (jobtype.Type, error) {
	t, ok := jobtype.Lookup(value)
	if !ok {
		return jobtype.Type{}, FlagErrorf("unknown job type %q; valid types: %s", value, strings.Join(jobtype.Names(), ", "))
	}
	return t, nil
}
