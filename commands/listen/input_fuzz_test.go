package listen

import (
	"slices"
	"strings"
	"testing"

	"github.com/socks-dev/socks/pubsub"
)

// FuzzATypedLineIsACommandOrRefusedInWords reads any line typed to a
// listen: an accepted one is a known verb, a subscribe or unsubscribe with
// valid topics, each once, all typed on the line, that reads back as the
// same command when written out; a refused one says why on one line
// without the line's control characters (the terminal shows it).
func FuzzATypedLineIsACommandOrRefusedInWords(f *testing.F) {
	for _, s := range []string{
		"", "  ", "subscribe news", "SUB a,b a", "unsub a", "ping", "quit now", "exit", "?", "help",
		"subscribe", "subscribe bad topic!", "frobnicate", "\x1b[2Jx", "sub \x1b]52;c;aGk=\x07", "sub a\u202eb",
		"sub " + strings.Repeat("t,", 60), "unsubscribe \xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			msg := err.Error()
			if msg == "" || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("%q: refused with %q, not one line of words", line, msg)
			}
			for _, c := range msg {
				if unsafeRune(c) {
					t.Fatalf("%q: the refusal %q holds the character %U", line, msg, c)
				}
			}
			return
		}
		fields := strings.Fields(strings.ReplaceAll(line, ",", " "))
		switch cmd.verb {
		case "":
			if len(fields) != 0 || cmd.topics != nil {
				t.Fatalf("%q: read as no command, %+v", line, cmd)
			}
			return
		case "ping", "quit", "help":
			if len(fields) != 1 || cmd.topics != nil {
				t.Fatalf("%q: read as %+v", line, cmd)
			}
		case "subscribe", "unsubscribe":
			if len(cmd.topics) == 0 || len(pubsub.Unique(cmd.topics)) != len(cmd.topics) {
				t.Fatalf("%q: read as %+v: no topics, or one twice", line, cmd)
			}
			for _, topic := range cmd.topics {
				if err := pubsub.ValidateTopic(topic); err != nil || !slices.Contains(fields[1:], topic) {
					t.Fatalf("%q: read with the topic %q, not valid (%v) or not typed", line, topic, err)
				}
			}
		default:
			t.Fatalf("%q: read as the verb %q", line, cmd.verb)
		}
		again := strings.TrimSpace(cmd.verb + " " + strings.Join(cmd.topics, " "))
		back, err := parseCommand(again)
		if err != nil || back.verb != cmd.verb || !slices.Equal(back.topics, cmd.topics) {
			t.Fatalf("%q: read as %+v, written %q, read back as %+v (%v)", line, cmd, again, back, err)
		}
	})
}
