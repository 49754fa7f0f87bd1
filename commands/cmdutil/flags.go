package cmdutil

import (
	"fmt"
	"strings"

	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/text"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// RefusesInheritedFlags is the annotation of a command whose RunE
// refuses every flag it inherits (NoInheritedFlags): its help and its
// pages of the reference list none of them, which it would only refuse.
const RefusesInheritedFlags = "socks/refuses-inherited-flags"

// MarkRefusesInheritedFlags annotates cmd with RefusesInheritedFlags.
func MarkRefusesInheritedFlags(cmd *cobra.Command) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[RefusesInheritedFlags] = "true"
}

// NoInheritedFlags refuses the flags cmd inherits from its parents (the
// global --backend, --state-dir, ...) that were given: a command that reads
// none of them would run as if they had not been, without a word. why says
// what the command runs on instead, and what to run to have the flags.
func NoInheritedFlags(cmd *cobra.Command, why string) error {
	var given []string
	// VisitAll and Changed: the set InheritedFlags makes has seen no Set.
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			given = append(given, "--"+f.Name)
		}
	})
	if len(given) == 0 {
		return nil
	}
	return FlagErrorf("%s takes no %s: %s", cmd.Name(), text.Or(given), why)
}

// RepeatedFlagError is a flag that holds one value given two different
// ones: pflag kept the last and dropped the first without a word, so
// `subs list --topic a --topic b` listed b alone. It names no value, as
// the flag may be a secret (listen --id).
type RepeatedFlagError struct{ Name string }

func (e *RepeatedFlagError) Error() string {
	return fmt.Sprintf("--%s takes one value, but was given two: give it once", e.Name)
}

// OneValueEach makes every flag of fs that holds one value (all but the
// slice and array flags, which collect theirs) refuse a second, different
// value with a *RepeatedFlagError. The same value again is let through:
// it loses nothing (-vv, a script adding a flag it already had). Flags
// already made so are left as they are, so that the persistent flags a
// command shares with its parent can be visited twice.
func OneValueEach(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		switch f.Value.(type) {
		case pflag.SliceValue, *oneValue, oneBool:
			return
		}
		v := &oneValue{Value: f.Value, name: f.Name}
		if f.Value.Type() == "bool" {
			// pflag shows a switch's default only when it is true, and
			// knows a switch by this method.
			f.Value = oneBool{v}
			return
		}
		if f.DefValue == "0s" {
			// pflag knows a zero duration default ("0s") only in its own
			// duration type; "0" it takes as zero in any type, so the
			// help still leaves "(default 0s)" out.
			f.DefValue = "0"
		}
		f.Value = v
	})
}

// oneValue is a pflag.Value that takes one value, or the same one again.
type oneValue struct {
	pflag.Value
	name  string
	given bool
	first string
}

func (v *oneValue) Set(s string) error {
	if v.given && s != v.first {
		return &RepeatedFlagError{Name: v.name}
	}
	v.given, v.first = true, s
	return v.Value.Set(s)
}

// oneBool is a oneValue that pflag knows for a switch.
type oneBool struct{ *oneValue }

func (oneBool) IsBoolFlag() bool { return true }

// ExpandsHome is the annotation ExpandHomeInPaths puts on a flag whose
// value it expands.
const ExpandsHome = "socks_expands_home"

// ExpandHomeInPaths makes every flag of fs that takes a path (marked with
// MarkFlagFilename or MarkFlagDirname, which the shell completion reads
// as well) expand a leading ~ as config.ExpandHome does, with getenv: a
// shell expands `--id-file ~/x` but not `--id-file=~/x`, and socks took
// the second as a folder named "~". "-" (standard input) is taken as
// written. Flags already made so are left as they are.
func ExpandHomeInPaths(fs *pflag.FlagSet, getenv func(string) string) {
	fs.VisitAll(func(f *pflag.Flag) {
		if _, done := f.Annotations[ExpandsHome]; done || !IsPathFlag(f) {
			return
		}
		f.Value = homePath{Value: f.Value, getenv: getenv}
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[ExpandsHome] = []string{"true"}
	})
}

// IsPathFlag reports whether flag f is marked as taking a file or a
// directory.
func IsPathFlag(f *pflag.Flag) bool {
	_, file := f.Annotations[cobra.BashCompFilenameExt]
	_, dir := f.Annotations[cobra.BashCompSubdirsInDir]
	return file || dir
}

// homePath is a pflag.Value that expands ~ in what it is set to.
type homePath struct {
	pflag.Value
	getenv func(string) string
}

func (v homePath) Set(s string) error {
	p, err := config.ExpandHome(s, v.getenv)
	if err != nil {
		return err
	}
	return v.Value.Set(p)
}
