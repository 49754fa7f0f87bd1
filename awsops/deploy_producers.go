//go:build !socks.lambdaonly

package awsops

import (
	"context"
	"fmt"
	"strings"
)

// The producers step of deploy: the EventBridge rule and SNS subscriptions
// of DeploySpec.Producers, as provision makes them (CheckProducers,
// CreateProducers), with their drift put right (RepairProducers).

// producersName names what the step sets up.
func (s DeploySpec) producersName() string {
	var parts []string
	if r := s.Producers.Rule; r != nil {
		parts = append(parts, "rule "+ruleLabel(*r))
	}
	for _, t := range s.Producers.Topics {
		parts = append(parts, "topic "+t)
	}
	return strings.Join(parts, ", ") + " -> " + s.Queues().Main
}

func (d *Deployer) checkProducers(ctx context.Context) (string, []string, error) {
	p := d.Spec.Producers
	if r := p.Rule; r != nil {
		if err := r.Validate(); err != nil {
			return "", nil, err
		}
	}
	if d.st.queueURL == "" {
		d.learnQueues(ctx)
	}
	if d.st.queueURL == "" {
		// The queue is created by the first step: all of it is to make.
		var drift []string
		for _, c := range PlannedProducers(d.st.queues, p) {
			drift = append(drift, c.String()+" is missing")
		}
		return ActionCreate, drift, nil
	}
	plan, err := CheckProducers(ctx, d.CP.Events, d.CP.SNS, d.CP.SQS, d.st.queues, p)
	if err != nil {
		return "", nil, err
	}
	// A subscription pending confirmation is drift deploy cannot put
	// right (only the queue's owner confirms it): not an update of the
	// step, but Deploy's UnconfirmedError once the rest is in place.
	d.st.unconfirmed = nil
	var drift []string
	for _, dr := range plan.Drift {
		if dr.Aspect == AspectConfirmation {
			d.st.unconfirmed = append(d.st.unconfirmed, dr)
			continue
		}
		drift = append(drift, fmt.Sprintf("%s %s: %s is %s; want %s", dr.Kind, dr.Name, dr.Aspect, dr.Is, dr.Want))
	}
	repairs := len(drift)
	for _, c := range plan.Changes {
		drift = append(drift, c.String()+" is missing")
	}
	switch {
	case repairs > 0:
		return ActionUpdate, drift, nil
	case len(plan.Changes) > 0:
		return ActionCreate, drift, nil
	}
	return ActionNone, nil, nil
}

func (d *Deployer) applyProducers(ctx context.Context, _ string) error {
	p := d.Spec.Producers
	plan, err := CheckProducers(ctx, d.CP.Events, d.CP.SNS, d.CP.SQS, d.st.queues, p)
	if err != nil {
		return err
	}
	if err := RepairProducers(ctx, d.CP.Events, d.CP.SNS, d.CP.SQS, d.st.queues, p, plan); err != nil {
		return err
	}
	if err := CreateProducers(ctx, d.CP.Events, d.CP.SNS, d.CP.SQS, d.st.queues, p, plan); err != nil {
		return err
	}
	// What it subscribed and SNS holds pending ends Deploy as one found
	// pending does (UnconfirmedError), once the rest is in place.
	d.st.unconfirmed = append(d.st.unconfirmed, plan.Unconfirmed...)
	return nil
}
