package commands

import (
	"errors"
	"testing"
)

// The strings are cobra's (v1.10.2) as socks's commands produce them
// (socks publish --message hi; publish --topic t --body 1 --message x;
// chatter revoke --geek a; docs; ...), and one of several required flags
// in the format cobra's ValidateRequiredFlags writes.
func TestCobraWordsReadAsSocksRefusals(t *testing.T) {
	for _, tc := range []struct{ cobra, want string }{
		{`required flag(s) "topic" not set`, "--topic is required"},
		{`required flag(s) "geek", "topic" not set`, "--geek and --topic are required"},
		{`required flag(s) "geek", "id", "topic" not set`, "--geek, --id and --topic are required"},
		{"if any flags in the group [message body body-file] are set none of the others can be; [body message] were all set",
			"--message and --body do not go together: give only one of --message, --body or --body-file"},
		{"if any flags in the group [message body body-file] are set none of the others can be; [body body-file message] were all set",
			"--message, --body and --body-file do not go together: give only one of --message, --body or --body-file"},
		{"if any flags in the group [wait direct] are set none of the others can be; [direct wait] were all set",
			"--wait and --direct do not go together: give only one of --wait or --direct"},
		{"if any flags in the group [id id-file all] are set none of the others can be; [all id] were all set",
			"--id and --all do not go together: give only one of --id, --id-file or --all"},
		{"at least one of the flags in the group [id id-file all] is required", "give one of --id, --id-file or --all"},
		{"at least one of the flags in the group [man markdown] is required", "give one of --man or --markdown"},
		{"unknown command \"publsh\" for \"socks\"\n\nDid you mean this?\n\tpublish\n", `unknown command "publsh" for "socks": did you mean publish?`},
	} {
		if got := cobraWords(errors.New(tc.cobra)).Error(); got != tc.want {
			t.Errorf("cobraWords(%q) = %q, want %q", tc.cobra, got, tc.want)
		}
	}
}

// What does not read exactly as the cobra this was written against is
// passed on as it is: a newer cobra's wording must not be garbled.
func TestCobraWordsLeaveWhatTheyDoNotKnowAsItIs(t *testing.T) {
	for _, msg := range []string{
		`required flag(s) "topic" not set!`,
		`required flag(s) "" not set`,
		`required flag(s) "to pic" not set`,
		`required flag(s) topic not set`,
		"if any flags in the group [wait direct] are set none of the others can be; [direct wait] were set",
		"if any flags in the group [wait direct] are set none of the others can be; [direct] were all set",
		"if any flags in the group [wait direct] are set none of the others can be; [direct json] were all set",
		"if any flags in the group [wait direct] are set none of the others can be; [direct direct] were all set",
		"if any flags in the group [wait] are set none of the others can be; [wait wait] were all set",
		"if any flags in the group [wait direct] are set they must all be set; missing [direct]",
		"at least one of the flags in the group [] is required",
		"at least one of the flags in the group [id id-file all] is required; give one",
		"at least one of the flags in the group [id  all] is required",
		"unknown command \"x\" for \"socks\"",
		"some other error",
	} {
		if got := cobraWords(errors.New(msg)).Error(); got != msg {
			t.Errorf("cobraWords(%q) = %q, want it unchanged", msg, got)
		}
	}
}
