package listen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/socks-dev/socks/pubsub"
)

const helpText = `commands: subscribe T [T...] · unsubscribe T [T...] · ping · quit`

// command is one typed line.
type command struct {
	verb   string // "", subscribe, unsubscribe, ping, quit, help
	topics []string
}

// parseCommand reads one typed line. Topics may be separated by spaces or
// commas.
func parseCommand(line string) (command, error) {
	fields := strings.Fields(strings.ReplaceAll(line, ",", " "))
	if len(fields) == 0 {
		return command{}, nil
	}
	verb, args := strings.ToLower(fields[0]), fields[1:]
	switch verb {
	case "subscribe", "sub", "unsubscribe", "unsub":
		if strings.HasPrefix(verb, "unsub") {
			verb = "unsubscribe"
		} else {
			verb = "subscribe"
		}
		if len(args) == 0 {
			return command{}, fmt.Errorf("%s needs at least one topic: %s TOPIC [TOPIC...]", verb, verb)
		}
		topics, err := pubsub.NormalizeTopics(args)
		if err != nil {
			return command{}, err
		}
		return command{verb: verb, topics: topics}, nil
	case "ping", "quit", "exit", "help", "?":
		if len(args) > 0 {
			return command{}, fmt.Errorf("%s takes no arguments", verb)
		}
		switch verb {
		case "exit":
			verb = "quit"
		case "?":
			verb = "help"
		}
		return command{verb: verb}, nil
	}
	return command{}, fmt.Errorf("unknown command %q; %s", Sanitize(fields[0], false), helpText)
}

// jsonUnmarshalObject decodes data into v only when it is a JSON object.
func jsonUnmarshalObject(data []byte, v any) error {
	if d := bytes.TrimSpace(data); len(d) == 0 || d[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(data, v)
}
