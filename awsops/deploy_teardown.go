//go:build !socks.lambdaonly

package awsops

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Deployed lists the control-plane resources of the stack that exist (what
// Undeploy deletes): found by the stack tag (every API) or by name and tag
// (the function, the role, the log group: tagged, or the function's when the
// function is the stack's); the mapping through its function.
func (d *Deployer) Deployed(ctx context.Context) ([]DeployStep, error) {
	d.Spec = d.Spec.withDefaults()
	var out []DeployStep
	add := func(kind, name string) { out = append(out, DeployStep{Kind: kind, Name: name, Action: ActionDelete}) }
	ourFunction := false
	fn, err := d.CP.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())})
	switch {
	case isCode(err, "ResourceNotFoundException"):
	case err != nil:
		return nil, Explain(err)
	case fn.Tags[TagStack] == d.Spec.Stack:
		ourFunction = true
		// Every mapping of the function: Lambda keeps them when the
		// function is deleted, pointing at nothing.
		in := &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(d.Spec.FunctionName())}
		pages := pageTokens{what: "Lambda ListEventSourceMappings"}
		for {
			page, err := d.CP.Lambda.ListEventSourceMappings(ctx, in)
			if err != nil {
				return nil, Explain(err)
			}
			for _, m := range page.EventSourceMappings {
				add("event source mapping", aws.ToString(m.UUID))
			}
			more, err := pages.next(page.NextMarker)
			if err != nil {
				return nil, fmt.Errorf("listing the event source mappings of function %s: %w; list them with `aws lambda list-event-source-mappings --function-name %s`", d.Spec.FunctionName(), err, d.Spec.FunctionName())
			}
			if !more {
				break
			}
			in.Marker = page.NextMarker
		}
		add("function", d.Spec.FunctionName())
	}
	apis, err := StackAPIs(ctx, d.CP.APIGW, d.Spec.Stack)
	if err != nil {
		return nil, err
	}
	for _, api := range apis {
		// Every one: two deploys that ran at once made two.
		out = append(out, DeployStep{Kind: "websocket api", Name: aws.ToString(api.Name) + " (" + aws.ToString(api.ApiId) + ")", Action: ActionDelete, id: aws.ToString(api.ApiId)})
	}
	role, err := d.CP.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(d.Spec.RoleName())})
	switch {
	case isCode(err, "NoSuchEntity"):
	case err != nil:
		return nil, Explain(err)
	case hasStackTag(role.Role.Tags, d.Spec.Stack):
		add("role", d.Spec.RoleName())
	}
	g, err := findLogGroup(ctx, d.CP.Logs, d.Spec.LogGroupName())
	if err != nil {
		return nil, err
	}
	if g != nil {
		ours := ourFunction
		if !ours {
			arn := aws.ToString(g.LogGroupArn)
			if arn == "" {
				arn = strings.TrimSuffix(aws.ToString(g.Arn), ":*")
			}
			tags, err := d.CP.Logs.ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
			if err != nil {
				return nil, Explain(err)
			}
			ours = tags.Tags[TagStack] == d.Spec.Stack
		}
		if ours {
			add("log group", d.Spec.LogGroupName())
		}
	}
	return out, nil
}

// Undeploy deletes what Deployed lists (not the tables and queues: see
// DeleteTables and DeleteQueues), the mapping first. Resources already
// gone are skipped, so a second run finishes an interrupted one.
func (d *Deployer) Undeploy(ctx context.Context, steps []DeployStep) error {
	for _, s := range steps {
		var err error
		switch s.Kind {
		case "event source mapping":
			_, err = d.CP.Lambda.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(s.Name)})
		case "function":
			_, err = d.CP.Lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())})
		case "websocket api":
			_, err = d.CP.APIGW.DeleteApi(ctx, &apigatewayv2.DeleteApiInput{ApiId: aws.String(s.id)})
		case "role":
			err = d.deleteRole(ctx)
		case "log group":
			_, err = d.CP.Logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(d.Spec.LogGroupName())})
		}
		if err != nil && !isCode(err, "ResourceNotFoundException", "NoSuchEntity", "NotFoundException") {
			return fmt.Errorf("deleting %s: %w", s, Explain(err))
		}
		if d.Progress != nil {
			d.Progress(s, true)
		}
	}
	return nil
}

// deleteRole removes the role's policies, then the role. A policy already
// gone is skipped: its NoSuchEntity must not read, in Undeploy, as the
// role being gone.
func (d *Deployer) deleteRole(ctx context.Context) error {
	name := aws.String(d.Spec.RoleName())
	inline, err := d.CP.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: name})
	if err != nil {
		return err
	}
	for _, p := range inline.PolicyNames {
		if _, err := d.CP.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: name, PolicyName: aws.String(p)}); err != nil && !isCode(err, "NoSuchEntity") {
			return err
		}
	}
	attached, err := d.CP.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: name})
	if err != nil {
		return err
	}
	for _, p := range attached.AttachedPolicies {
		if _, err := d.CP.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: name, PolicyArn: p.PolicyArn}); err != nil && !isCode(err, "NoSuchEntity") {
			return err
		}
	}
	_, err = d.CP.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: name})
	return err
}

// LambdaZip packs bootstrap as the one file of a deployment package,
// executable, with a fixed time stamp: the same binary gives the same zip,
// so deploy can compare it with the function's CodeSha256.
func LambdaZip(bootstrap []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: DeployHandler, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.SetMode(0o755)
	f, err := w.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(bootstrap); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Lambda's limits on a deployment package uploaded with the function
// (not through S3): the zip itself, and what its files unzip to.
const (
	MaxLambdaZip      = 50 << 20
	MaxLambdaUnzipped = 250 << 20
)

// CheckLambdaZip says what is wrong with pkg as the deployment package of
// the function (provided.al2023), or nil: it must be a zip of at most
// MaxLambdaZip bytes whose files unzip to at most MaxLambdaUnzipped, with
// an executable file named bootstrap at its root (or a link), which the
// runtime runs.
// Lambda takes a package without one, or with one it may not execute, and
// every invocation of the function then fails.
func CheckLambdaZip(pkg []byte) error {
	if err := CheckLambdaZipSize(int64(len(pkg))); err != nil {
		return err
	}
	r, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		return fmt.Errorf("is not a zip file (%v): give a zip with the socks binary for linux at its root, named bootstrap (a release's socks_lambda_*.zip)", err)
	}
	var unzipped uint64
	var boot *zip.File
	var nested []string
	for _, f := range r.File {
		unzipped += f.UncompressedSize64
		switch {
		case f.Name == DeployHandler || f.Name == DeployHandler+"/":
			boot = f
		case strings.HasSuffix(f.Name, "/"+DeployHandler):
			nested = append(nested, f.Name)
		}
	}
	if unzipped > MaxLambdaUnzipped {
		return fmt.Errorf("unzips to %s, over the 250 MB Lambda allows for a function: leave out what the function does not need", megabytes(unzipped))
	}
	switch {
	case boot == nil && len(nested) > 0:
		return fmt.Errorf("has no bootstrap at its root, only %s: zip it from its own directory (cd DIR && zip -X socks-lambda.zip bootstrap)", strings.Join(nested, ", "))
	case boot == nil:
		return errors.New("has no bootstrap at its root: the runtime (provided.al2023) runs the file of that name; build socks for linux as bootstrap and zip it (zip -X socks-lambda.zip bootstrap)")
	case boot.Mode()&os.ModeSymlink != 0:
		// Lambda keeps a link; what it points at is run.
	case !boot.Mode().IsRegular():
		return fmt.Errorf("holds bootstrap as %s, and bootstrap is not a file: the runtime runs the file of that name; zip the socks binary as bootstrap", describeMode(boot.Mode()))
	case boot.Mode().Perm()&0o100 == 0:
		return fmt.Errorf("holds bootstrap with mode %s: bootstrap is not executable, and Lambda could not run it; chmod +x bootstrap and zip it again on Linux or macOS (zip -X keeps the mode; from Windows, build-lambda-zip sets it)", boot.Mode().Perm())
	}
	return nil
}

// CheckLambdaZipSize says that a deployment package of size bytes is over
// what Lambda takes in an upload, or nil.
func CheckLambdaZipSize(size int64) error {
	if size > MaxLambdaZip {
		return fmt.Errorf("is %s, over the 50 MB Lambda takes in an upload: leave out what the function does not need", megabytes(uint64(size)))
	}
	return nil
}

func megabytes(n uint64) string {
	return fmt.Sprintf("%d MB", (n+(1<<20)-1)>>20)
}

func describeMode(m os.FileMode) string {
	if m.IsDir() {
		return "a directory"
	}
	return "a special file"
}
