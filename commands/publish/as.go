package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
)

// Producers `publish --as` prints for.
const (
	AsEventBridge = "eventbridge"
	AsSNS         = "sns"
)

// Entry is one entry of `aws events put-events --entries`: the envelope is
// the Detail, as a string.
type Entry struct {
	Source       string `json:"Source"`
	DetailType   string `json:"DetailType"`
	Detail       string `json:"Detail"`
	EventBusName string `json:"EventBusName,omitempty"`
}

// printAs prints the envelope as the chosen producer sends it.
func printAs(ctx context.Context, opts *Options) error {
	if opts.As != AsEventBridge && opts.As != AsSNS {
		return cmdutil.FlagErrorf("--as %q: use %q or %q", opts.As, AsEventBridge, AsSNS)
	}
	given := opts.ID
	env, err := opts.Envelope(ctx)
	if err != nil {
		return err
	}
	if given == "" {
		// The broker names the message by the event's own ID.
		env.ID = ""
	}
	data, err := env.Marshal()
	if err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	if opts.As == AsSNS {
		if len(data) > pubsub.MaxSNSMessageBytes {
			return cmdutil.FlagErrorf("the envelope is %s; an SNS message holds at most %s", text.Size(len(data)), text.Size(pubsub.MaxSNSMessageBytes))
		}
		// Data, for the producer: on a terminal whose locale is not
		// UTF-8, escaped to ASCII with no glyph replaced.
		fmt.Fprintln(iostreams.ForData(opts.IO.Out), string(data))
		return nil
	}
	if opts.Source == "" || opts.DetailType == "" {
		return cmdutil.FlagErrorf("--source and --detail-type must not be empty: an EventBridge rule matches on them")
	}
	entry := Entry{Source: opts.Source, DetailType: opts.DetailType, Detail: string(data), EventBusName: opts.EventBus}
	// EventBridge counts an entry's Source, DetailType and Detail in
	// UTF-8 bytes, the Detail as the string it is: not as the JSON of
	// --entries escapes it (a body of quotes would double).
	if n := len(entry.Source) + len(entry.DetailType) + len(entry.Detail); n > pubsub.MaxEventBridgeEntryBytes {
		return cmdutil.FlagErrorf("the entry is %s as EventBridge counts it (Source, DetailType and the envelope as Detail); EventBridge takes at most %s per PutEvents entry", text.Size(n), text.Size(pubsub.MaxEventBridgeEntryBytes))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode([]Entry{entry}); err != nil {
		return err
	}
	_, err = iostreams.ForData(opts.IO.Out).Write(buf.Bytes())
	return err
}
