package awsops

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestARoleOrFunctionOfTheStacksNameWithoutItsTagIsNotTheStacks: deploy
// and teardown find the role and the function by their names and the
// socks:stack tag (docs/deploy.md, "Found by tag"). One of the stack's
// name without the tag is someone else's: deploy, dry run or not, stops
// at it saying so, without rewriting its trust, its policies or its code,
// and teardown does not list it nor delete it.
func TestARoleOrFunctionOfTheStacksNameWithoutItsTagIsNotTheStacks(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"role", "function"} {
		t.Run("a "+kind+" of the stack's name without the tag is refused and left", func(t *testing.T) {
			t.Parallel()
			cp, stack, _, d := shellStack(t, "foreign"+kind)
			ctx := t.Context()
			iamc := cp.IAM.(*iam.Client)
			// The stranger's role: the stack's role name for the role
			// subtest, another name for the function's own role.
			roleName := d.Spec.RoleName()
			if kind == "function" {
				roleName = stack + "-theirs"
			}
			role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(roleName), AssumeRolePolicyDocument: aws.String(lambdaTrustPolicy)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_, _ = iamc.DeleteRole(cleanupContext(t), &iam.DeleteRoleInput{RoleName: aws.String(roleName)})
			})
			theirZip, err := LambdaZip([]byte("#!/bin/sh\n# theirs\n"))
			if err != nil {
				t.Fatal(err)
			}
			if kind == "function" {
				if _, err := cp.Lambda.(*lambda.Client).CreateFunction(ctx, &lambda.CreateFunctionInput{
					FunctionName: aws.String(d.Spec.FunctionName()), Role: role.Role.Arn, Runtime: lambdatypes.RuntimeProvidedal2023,
					Handler: aws.String(DeployHandler), Code: &lambdatypes.FunctionCode{ZipFile: theirZip},
				}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					_, _ = cp.Lambda.DeleteFunction(cleanupContext(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())})
				})
			}
			name := d.Spec.RoleName()
			if kind == "function" {
				name = d.Spec.FunctionName()
			}
			want := kind + " " + name + " exists but is not tagged socks:stack=" + stack
			for _, dryRun := range []bool{true, false} {
				if _, err := testDeployer(t, cp, stack, shellZip(t)).Deploy(ctx, dryRun); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("deploy (dry run %v): %v; want it to stop saying %q", dryRun, err, want)
				}
			}
			// Untouched: no policy put on the role, its trust as made; the
			// function's code its own.
			inline, err := iamc.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(roleName)})
			if err != nil || len(inline.PolicyNames) != 0 {
				t.Errorf("the stranger's role has inline policies %v (%v); want none", inline.PolicyNames, err)
			}
			if kind == "function" {
				fn, err := cp.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())})
				if err != nil || aws.ToString(fn.Configuration.CodeSha256) != CodeSHA256(theirZip) || aws.ToString(fn.Configuration.Role) != aws.ToString(role.Role.Arn) {
					t.Errorf("the stranger's function after deploy: %+v (%v); want its own code and role", fn, err)
				}
			}
			steps, err := d.Deployed(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				if s.Kind == kind {
					t.Errorf("teardown would delete %s; want the stranger's %s left", s, kind)
				}
			}
			if err := d.Undeploy(ctx, steps); err != nil {
				t.Fatal(err)
			}
			if _, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(roleName)}); err != nil {
				t.Errorf("the stranger's role after teardown: %v", err)
			}
			if kind == "function" {
				if _, err := cp.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())}); err != nil {
					t.Errorf("the stranger's function after teardown: %v", err)
				}
			}
		})
	}
}

// TestAPolicyAttachedToTheRoleByHandIsDriftAndTornDown: the role carries
// deploy's one inline policy and nothing else (docs/deploy.md,
// "Idempotent": a managed policy attached is drift). A managed policy
// attached and another inline policy put on the role by hand are one
// update of the role, naming both, which deploy undoes; and a role left
// with a managed policy attached is still deleted by teardown (IAM
// refuses to delete a role with one attached).
func TestAPolicyAttachedToTheRoleByHandIsDriftAndTornDown(t *testing.T) {
	t.Parallel()
	cp, stack, zip, d := shellStack(t, "managed")
	ctx := t.Context()
	iamc := cp.IAM.(*iam.Client)
	deploy(t, d, false)
	policy, err := iamc.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(stack + "-wide"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = iamc.DeletePolicy(cleanupContext(t), &iam.DeletePolicyInput{PolicyArn: policy.Policy.Arn})
	})
	attach := func() {
		t.Helper()
		if _, err := iamc.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(d.Spec.RoleName()), PolicyArn: policy.Policy.Arn}); err != nil {
			t.Fatal(err)
		}
	}
	attach()
	if _, err := iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(d.Spec.RoleName()), PolicyName: aws.String("Extra"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	wantOneDrift(t, cp, stack, zip, "after a managed and an inline policy were added", "update role: ", "managed policy "+aws.ToString(policy.Policy.Arn), "inline policy Extra")
	putRight(t, cp, stack, zip)
	attached, err := iamc.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(d.Spec.RoleName())})
	if err != nil || len(attached.AttachedPolicies) != 0 {
		t.Errorf("after deploy the role has managed policies %v (%v); want none", attached.AttachedPolicies, err)
	}

	attach()
	steps, err := d.Deployed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Undeploy(ctx, steps); err != nil {
		t.Fatalf("teardown of a role with a managed policy attached: %v", err)
	}
	if _, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(d.Spec.RoleName())}); !isCode(err, "NoSuchEntity") {
		t.Errorf("role %s after teardown: %v; want it gone", d.Spec.RoleName(), err)
	}
}
