package awsops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/smithy-go"
)

// TestAConflictThatIsNotACreateIsNotReadAgainAndAgain: applyStep read a
// step again after any answer of an "already exists" code and applied it
// again, up to 16 times in a row with no pause, also when the answer
// was Lambda's ResourceConflictException for an update in progress (or a
// mapping of the queue that is another function's), where the read
// finds the step as it was before: 16 GetFunction and update calls for
// the error of the first. A read that shows no progress (the same action
// and drift as before the apply that failed) now ends it with that
// error; a create whose answer was lost, read again, still finishes.
func TestAConflictThatIsNotACreateIsNotReadAgainAndAgain(t *testing.T) {
	inProgress := &smithy.GenericAPIError{Code: "ResourceConflictException", Message: "The operation cannot be performed at this time. An update is in progress for resource"}
	d := &Deployer{}
	applies, checks := 0, 0
	def := deployStepDef{
		kind: "function", name: func() string { return "prod-socks" },
		check: func(context.Context) (string, []string, error) {
			checks++
			return ActionUpdate, []string{"timeout is 3s; want 30s"}, nil
		},
		apply: func(context.Context, string) error { applies++; return inProgress },
	}
	err := d.applyStep(t.Context(), def, ActionUpdate, []string{"timeout is 3s; want 30s"})
	if !errors.Is(err, inProgress) {
		t.Fatalf("applyStep = %v; want Lambda's conflict", err)
	}
	if applies > 2 {
		t.Errorf("the step was applied %d times (read %d times) for a conflict the read shows unchanged; want at most 2", applies, checks)
	}

	// Six routes; the create of each of the first three answers that it
	// exists (the SDK's retry of a create whose answer was lost).
	missing := []string{"a", "b", "c", "d", "e", "f"}
	applies = 0
	routes := deployStepDef{
		kind: "routes", name: func() string { return "prod" },
		check: func(context.Context) (string, []string, error) {
			if len(missing) == 0 {
				return ActionNone, nil, nil
			}
			var drift []string
			for _, r := range missing {
				drift = append(drift, fmt.Sprintf("route %s is missing", r))
			}
			return ActionUpdate, drift, nil
		},
		apply: func(context.Context, string) error {
			applies++
			missing = slices.Delete(missing, 0, 1)
			if applies <= 3 {
				return &smithy.GenericAPIError{Code: "ConflictException", Message: "exists"}
			}
			missing = nil
			return nil
		},
	}
	_, drift, _ := routes.check(t.Context())
	if err := d.applyStep(t.Context(), routes, ActionUpdate, drift); err != nil || len(missing) != 0 {
		t.Errorf("applyStep with three lost answers = %v, %v left; want it finished", err, missing)
	}
}
