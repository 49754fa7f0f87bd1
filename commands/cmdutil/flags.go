package cmdutil

import (
	"strings"

	"github.com/spf13/cobra"
)

// NotEmpty refuses each named flag that was given with an empty value
// (`--geek "$NAME"` with NAME unset). Where leaving such a flag out means
// "every geek" or "any topic", an empty value must not quietly mean the
// same: call it first thing in RunE.
func NotEmpty(cmd *cobra.Command, names ...string) error {
	for _, name := range names {
		f := cmd.Flags().Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		values := []string{f.Value.String()}
		if sv, ok := f.Value.(interface{ GetSlice() []string }); ok {
			values = sv.GetSlice()
		}
		empty := true
		for _, v := range values {
			if strings.TrimSpace(v) != "" {
				empty = false
			}
		}
		if empty {
			return FlagErrorf("--%s is empty: give a value, or leave the flag out", name)
		}
	}
	return nil
}
