package awsops

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// callerIn answers GetCallerIdentity as STS does for credentials of
// account 111122223333 in partition part.
type callerIn struct{ part string }

func (c callerIn) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String("111122223333"), Arn: aws.String("arn:" + c.part + ":sts::111122223333:assumed-role/deployer/me")}, nil
}

// TestARNsAreBuiltInThePartitionOfTheCredentials: the ARNs deploy builds
// (its function's, the integration's URI) and the ARN teardown looks for
// the subscriptions of a queue that is gone by took their partition from
// the region's name, which knows cn- and us-gov- only: in the European
// Sovereign Cloud (aws-eusc) or an ISO region they said arn:aws:, which
// names nothing there, and teardown found none of the subscriptions. The
// partition is the one of the credentials' own ARN (STS
// GetCallerIdentity), and the region's guess only when STS gives none.
func TestARNsAreBuiltInThePartitionOfTheCredentials(t *testing.T) {
	for _, tc := range []struct{ region, part string }{
		{"eusc-de-east-1", "aws-eusc"},
		{"us-iso-east-1", "aws-iso"},
		{"cn-north-1", "aws-cn"},
		{"eu-west-1", "aws"},
	} {
		cp := &ControlPlane{STS: callerIn{tc.part}}
		got, err := cp.QueueARN(t.Context(), tc.region, "prod-envelopes")
		if want := "arn:" + tc.part + ":sqs:" + tc.region + ":111122223333:prod-envelopes"; err != nil || got != want {
			t.Errorf("QueueARN in %s = %q, %v; want %q", tc.region, got, err, want)
		}
		d := &Deployer{CP: cp, Spec: DeploySpec{Stack: "prod", Region: tc.region}}
		if err := d.prepare(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, want := d.arn("lambda", "function:prod-socks"), "arn:"+tc.part+":lambda:"+tc.region+":111122223333:function:prod-socks"; got != want {
			t.Errorf("deploy's function ARN in %s = %q; want %q", tc.region, got, want)
		}
	}
	// An emulator that gives no ARN: the region's guess.
	cp := &ControlPlane{STS: callerIn{""}}
	if got, err := cp.QueueARN(t.Context(), "cn-north-1", "q"); err != nil || got != "arn:aws-cn:sqs:cn-north-1:111122223333:q" {
		t.Errorf("QueueARN with no partition from STS = %q, %v; want the region's", got, err)
	}
}
