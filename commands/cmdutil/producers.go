package cmdutil

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/pubsub"
)

// ProducerFlags ask for the producers of the envelopes queue: provision and
// deploy create them, teardown removes them. They are the same flags on
// each.
type ProducerFlags struct {
	EventBridgeRule bool
	EventBus        string
	Sources         []string
	DetailTypes     []string
	SNSTopics       []string
	SNSRaw          bool
}

// Bind adds the flags to cmd; withPattern adds the rule's pattern and the
// raw delivery setting too (teardown finds the rule by name).
func (f *ProducerFlags) Bind(cmd *cobra.Command, withPattern bool) {
	fl := cmd.Flags()
	fl.BoolVar(&f.EventBridgeRule, "eventbridge-rule", false, "an EventBridge rule STACK-envelopes that sends matching events to the queue")
	fl.StringVar(&f.EventBus, "event-bus", awsops.DefaultBus, "the event bus of the rule")
	fl.StringArrayVar(&f.SNSTopics, "sns-topic", nil, "ARN of an SNS topic the queue subscribes to (repeatable)")
	if withPattern {
		fl.StringArrayVar(&f.Sources, "source", []string{pubsub.DefaultEventSource}, "event source the rule matches (repeatable)")
		fl.StringArrayVar(&f.DetailTypes, "detail-type", []string{pubsub.DefaultDetailType}, "detail type the rule matches (repeatable)")
		fl.BoolVar(&f.SNSRaw, "sns-raw", false, "turn raw message delivery on for the SNS subscriptions")
	}
}

// Producers returns the producers the flags ask for on stack.
func (f *ProducerFlags) Producers(stack string) (awsops.Producers, error) {
	p := awsops.Producers{Topics: f.SNSTopics, RawDelivery: f.SNSRaw}
	for _, t := range f.SNSTopics {
		if !strings.HasPrefix(t, "arn:") || !strings.Contains(t, ":sns:") {
			return p, FlagErrorf("--sns-topic %q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", t)
		}
	}
	if f.EventBridgeRule {
		p.Rule = &awsops.EventRule{Name: awsops.RuleFor(stack), Bus: f.EventBus, Sources: f.Sources, DetailTypes: f.DetailTypes}
		// Teardown finds the rule by name; only provision gives a pattern.
		if f.Sources != nil || f.DetailTypes != nil {
			if err := p.Rule.Validate(); err != nil {
				return p, &FlagError{Err: err}
			}
		}
	}
	return p, nil
}
