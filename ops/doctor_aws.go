package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/config"
)

// AWSChecks are the checks that only apply to the AWS backend. They run
// after "backend" and before the queue checks.
var AWSChecks = []Check{
	{Name: "endpoints", Run: checkEndpoints},
	{Name: "credentials", Run: checkCredentials},
	{Name: "identity", Run: checkIdentity},
	{Name: "tables", Run: checkTables},
	{Name: "time to live", Run: checkTTL},
	{Name: "queues", Run: checkQueues},
	{Name: "deployed stack", Run: checkDeployed},
}

// checkDeployed compares what `socks deploy` made (the routes, the
// integration, the stage, the permission, the mapping and its state, the
// role's policy and the function's environment) with what deploy makes.
func checkDeployed(ctx context.Context, env *Env) Result {
	if r, ok := needAWS(env); !ok {
		return r
	}
	if env.AWS.Deployed == nil {
		return skip("skipped: DynamoDB or SQS has an endpoint of its own (an emulator); use --endpoint-url alone to check a deployed stack")
	}
	res, err := env.AWS.Deployed(ctx)
	if err != nil {
		return fail("cannot read the deployed stack: "+err.Error(),
			"check --region and --endpoint-url, and that the credentials may read IAM, Lambda, API Gateway and CloudWatch Logs")
	}
	if res.APIID == "" && res.FunctionARN == "" {
		return ok("no API or function of stack " + res.Stack + " made by `socks deploy` (none tagged socks:stack=" + res.Stack + "): nothing more to check")
	}
	var drift []string
	for _, s := range res.Steps {
		if s.Kind == "tables and queues" || s.Action == awsops.ActionNone {
			continue
		}
		if len(s.Drift) == 0 {
			drift = append(drift, s.String()+" is missing")
		}
		for _, d := range s.Drift {
			drift = append(drift, s.Kind+": "+d)
		}
	}
	if len(drift) > 0 {
		return fail(strings.Join(drift, "; "), "run `socks deploy` to put it right (`socks deploy --dry-run` shows what it would change)")
	}
	return ok("API " + res.APIID + ": routes, integration, stage, permission, event source mapping (enabled), role policy and function environment as deploy makes them")
}

// credentialsExpiryWarning: credentials that expire sooner than this warn.
const credentialsExpiryWarning = 15 * time.Minute

// Fixes of the AWS checks.
const (
	credentialsFix = "set AWS_PROFILE (or --profile) to a configured profile, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
	tablesReadFix  = "check --region (and --dynamodb-endpoint-url for an emulator), and that the credentials may call dynamodb:DescribeTable, dynamodb:DescribeTimeToLive and dynamodb:ListTagsOfResource"
	queuesReadFix  = "check --region (and --sqs-endpoint-url for an emulator), and that the credentials may call sqs:GetQueueUrl, sqs:GetQueueAttributes and sqs:ListQueueTags"
	provisionFix   = "run `socks provision`"
)

// needAWS returns a skip result when the AWS backend did not open.
func needAWS(env *Env) (Result, bool) {
	if env.AWS == nil {
		return skip("skipped: the backend did not open"), false
	}
	return Result{}, true
}

// checkEndpoints says where each kind of call goes.
func checkEndpoints(_ context.Context, env *Env) Result {
	a := env.Config.AWS
	at := func(u string) string {
		if u == "" {
			return "AWS (" + orDash(a.Region) + ")"
		}
		return u
	}
	var parts []string
	if db, q := a.DynamoDBEndpoint(), a.SQSEndpoint(); db == q {
		parts = append(parts, "DynamoDB and SQS at "+at(db))
	} else {
		parts = append(parts, "DynamoDB at "+at(db), "SQS at "+at(q))
	}
	switch {
	case env.Endpoint != "":
		parts = append(parts, "Management API at "+env.Endpoint)
	case a.CallbackURL != "":
		parts = append(parts, "Management API at "+a.CallbackURL)
	default:
		parts = append(parts, "no Management API endpoint")
	}
	if a.Profile != "" {
		parts = append(parts, "profile "+a.Profile)
	}
	return ok(strings.Join(parts, ", "))
}

// checkCredentials retrieves the credentials the SDK resolved.
func checkCredentials(ctx context.Context, env *Env) Result {
	if r, ok := needAWS(env); !ok {
		return r
	}
	if env.AWS.Credentials == nil {
		return fail("no credentials provider is configured", credentialsFix)
	}
	creds, err := env.AWS.Credentials.Retrieve(ctx)
	if err != nil {
		return fail("the SDK cannot retrieve credentials: "+err.Error(), credentialsFix)
	}
	detail := "access key " + maskKey(creds.AccessKeyID)
	if creds.Source != "" {
		detail += " from " + creds.Source
	}
	if !creds.CanExpire || creds.Expires.IsZero() {
		return ok(detail)
	}
	var r Result
	switch left := creds.Expires.Sub(env.Now); {
	case left <= 0:
		r = fail(detail+": expired", "refresh them (for example `aws sso login`)")
	case left < credentialsExpiryWarning:
		r = warn(detail, "they expire soon: refresh them (for example `aws sso login`) before a long operation")
	default:
		r = ok(detail)
	}
	r.TimeLabel, r.Time = "expires", creds.Expires
	return r
}

// checkIdentity asks STS who the credentials belong to, unless an
// endpoint override says that this is an emulator setup.
func checkIdentity(ctx context.Context, env *Env) Result {
	if r, ok := needAWS(env); !ok {
		return r
	}
	if env.AWS.Identity == nil {
		return skip("skipped: endpoint override (emulator)")
	}
	id, err := env.AWS.Identity(ctx)
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			return fail("STS GetCallerIdentity refused the credentials: "+err.Error(), credentialsFix)
		}
		// No answer at all: a network without a route to STS (a private
		// VPC) says nothing about the credentials.
		return warn("cannot ask STS who the credentials belong to: "+err.Error(),
			"harmless if this machine has no route to STS; otherwise check the network and --region")
	}
	return ok(fmt.Sprintf("%s (account %s)", orDash(id.ARN), orDash(id.Account)))
}

// checkTables compares the tables' keys and indexes with what provision
// creates.
func checkTables(ctx context.Context, env *Env) Result {
	if r, ok := needAWS(env); !ok {
		return r
	}
	drifts, err := env.AWS.tableDrift(ctx)
	if err != nil {
		return fail("cannot describe the tables: "+err.Error(), tablesReadFix)
	}
	shape := slices.DeleteFunc(slices.Clone(drifts), func(d awsops.Drift) bool { return d.Aspect == awsops.AspectTTL })
	if len(shape) == 0 {
		return ok(strings.Join(env.AWS.Tables.Names(), ", ") + ": the keys and index provision creates")
	}
	return driftFailure(shape)
}

// checkTTL checks that time to live is on for every table that exists.
func checkTTL(ctx context.Context, env *Env) Result {
	if r, ok := needAWS(env); !ok {
		return r
	}
	drifts, err := env.AWS.tableDrift(ctx)
	if err != nil {
		return skip("skipped: the tables could not be described")
	}
	var ttl []awsops.Drift
	missing := map[string]bool{}
	for _, d := range drifts {
		switch {
		case d.Missing():
			missing[d.Name] = true
		case d.Aspect == awsops.AspectTTL:
			ttl = append(ttl, d)
		}
	}
	present := slices.DeleteFunc(env.AWS.Tables.Names(), func(n string) bool { return missing[n] })
	if len(present) == 0 {
		return skip("skipped: no table exists yet")
	}
	if len(ttl) > 0 {
		return driftFailure(ttl)
	}
	return ok("on for " + strings.Join(present, ", "))
}

// checkQueues compares the queues with what provision creates: both
// exist, the main queue dead-letters to the other after enough receives,
// and its visibility timeout covers the broker's.
func checkQueues(ctx context.Context, env *Env) Result {
	if r, ok := needAWS(env); !ok {
		return r
	}
	drifts, err := env.AWS.queueDrift(ctx)
	if err != nil {
		return fail("cannot describe the queues: "+err.Error(), queuesReadFix)
	}
	if len(drifts) > 0 {
		return driftFailure(drifts)
	}
	q := env.AWS.Queues
	return ok(fmt.Sprintf("%s and its dead-letter queue %s, with the redrive policy and visibility timeout provision sets", q.Main, q.DeadLetter))
}

// driftFailure describes drifts on one line, with their fixes. Tables and
// queues that only lack the stack tag (a repair provision makes) warn.
func driftFailure(drifts []awsops.Drift) Result {
	var missing, untagged, differ, fixes []string
	for _, d := range drifts {
		if d.Missing() {
			missing = append(missing, d.Kind+" "+d.Name)
			continue
		}
		if d.Repair() {
			untagged = append(untagged, d.Kind+" "+d.Name)
			continue
		}
		differ = append(differ, fmt.Sprintf("%s %s: %s is %s; want %s", d.Kind, d.Name, d.Aspect, d.Is, d.Want))
		if !slices.Contains(fixes, d.Fix) {
			fixes = append(fixes, d.Fix)
		}
	}
	var detail []string
	if len(missing) > 0 {
		detail = append(detail, "missing: "+strings.Join(missing, ", "))
	}
	if len(untagged) > 0 {
		// Made by a socks from before stacks were tagged.
		detail = append(detail, "without the "+awsops.TagStack+" tag: "+strings.Join(untagged, ", "))
	}
	detail = append(detail, differ...)
	fix := strings.Join(fixes, "; ")
	var what []string
	if len(missing) > 0 {
		what = append(what, "create what is missing")
	}
	if len(untagged) > 0 {
		what = append(what, "tag what is untagged")
	}
	switch {
	case len(what) > 0 && fix != "":
		// provision changes nothing while anything differs.
		fix += "; then " + provisionFix + " to " + strings.Join(what, " and ")
	case len(what) > 0:
		fix = provisionFix
	}
	if len(missing) == 0 && len(differ) == 0 {
		return warn(strings.Join(detail, "; "), fix+", which adds the tag and changes nothing else")
	}
	return fail(strings.Join(detail, "; "), fix)
}

// MigrationReadLimit is how many items of the connections table the
// migration check reads at most, so that on a big table it costs a few
// pages, not a full Scan.
const MigrationReadLimit = 2000

// migrationFix is what to do about records still to migrate.
const migrationFix = "run `socks provision` (or `socks deploy`), which migrates them in place while the stack serves; after an upgrade, run it again once --function-timeout has passed since the function was updated (docs/deploy.md, \"Upgrading\")"

// checkMigration looks for connection records a migration would change
// (written by an earlier socks, or by its Lambda function still running
// after an upgrade): until it runs, a fan-out to users misses them. It
// reads at most MigrationReadLimit items, and writes nothing.
func checkMigration(ctx context.Context, env *Env) Result {
	if r, ok := needAWS(env); !ok {
		return r
	}
	if env.AWS.Migration == nil {
		return skip("skipped: no DynamoDB store")
	}
	p, err := env.AWS.Migration(ctx)
	const countsThemAll = "`socks provision --dry-run` counts them all"
	early := "stopped early, at doctor's limit; " + countsThemAll
	why, stopped := readStoppedEarly(err, p.Read)
	switch {
	case stopped:
		p.Whole = false
		early = "stopped early, " + why + "; " + countsThemAll
	case errors.Is(err, context.DeadlineExceeded) || notAnsweredAsAWS(err):
		return cannotRead("the connections table", err, env)
	case throttled(err):
		return fail("cannot read the connections table: "+unread(err), throttledFix(env))
	case err != nil:
		return fail("cannot read the connections table: "+unread(err),
			"check that the credentials may call dynamodb:Scan and dynamodb:BatchGetItem on table "+env.AWS.Tables.Connections)
	}
	table := env.AWS.Tables.Connections
	const misses = "fan-outs to users may miss them until then"
	switch {
	case p.Changes == 0 && p.Whole:
		return ok(fmt.Sprintf("no connection records to migrate (read all %d items of table %s)", p.Read, table))
	case p.Changes == 0:
		return ok(fmt.Sprintf("no connection records to migrate in the first %d items of table %s (%s)", p.Read, table, early))
	case p.Whole:
		return warn(fmt.Sprintf("%d connection record%s to migrate in table %s (read all %d items): %s", p.Changes, plural(p.Changes), table, p.Read, misses), migrationFix)
	}
	return warn(fmt.Sprintf("some connection records to migrate in table %s: %d in the first %d items (%s): %s", table, p.Changes, p.Read, early, misses), migrationFix)
}

// checkAWSManagementAPI is the Management API check on AWS: without a
// configured endpoint it warns (the stack itself may be fine), else it
// asks the endpoint as checkManagementAPI does.
func checkAWSManagementAPI(ctx context.Context, env *Env) Result {
	a := env.Config.AWS
	switch {
	case a.CallbackURL == "" && a.WebSocketURL == "":
		return warn("no Management API endpoint is configured, so it was not checked; the broker, prune-stale and subs --live need it",
			"pass --callback-url or set "+config.EnvCallback+" to the WebSocket API's https URL with its stage (https://API_ID.execute-api.REGION.amazonaws.com/STAGE)")
	case env.AWS == nil:
		return skip("skipped: the backend did not open")
	}
	return checkManagementAPI(ctx, env)
}

// unlessQueuesMissing skips run when a queue is missing: the "queues"
// check already said so, with the fix.
func unlessQueuesMissing(run func(context.Context, *Env) Result) func(context.Context, *Env) Result {
	return func(ctx context.Context, env *Env) Result {
		if env.AWS != nil {
			if drifts, err := env.AWS.queueDrift(ctx); err == nil {
				if r, missing := skipMissing(drifts, env.AWS.Queues.Main, env.AWS.Queues.DeadLetter); missing {
					return r
				}
			}
		}
		return run(ctx, env)
	}
}

// unlessTableUnusable skips run when the connections table is missing or
// lacks the key or index the store reads it by: the "tables" check
// already said so, with the fix.
func unlessTableUnusable(run func(context.Context, *Env) Result) func(context.Context, *Env) Result {
	return func(ctx context.Context, env *Env) Result {
		if env.AWS != nil {
			if drifts, err := env.AWS.tableDrift(ctx); err == nil {
				if r, missing := skipMissing(drifts, env.AWS.Tables.Connections); missing {
					return r
				}
				for _, d := range drifts {
					if d.Name == env.AWS.Tables.Connections && d.Aspect != awsops.AspectTTL && d.Aspect != awsops.AspectStackTag && d.Aspect != awsops.AspectOtherStack {
						return skip(fmt.Sprintf("skipped: table %s cannot be read as socks reads it: its %s differs (see tables)", d.Name, d.Aspect))
					}
				}
			}
		}
		return run(ctx, env)
	}
}

// skipMissing returns a skip result naming the first of names that drifts
// says is missing.
func skipMissing(drifts []awsops.Drift, names ...string) (Result, bool) {
	for _, d := range drifts {
		if d.Missing() && slices.Contains(names, d.Name) {
			return skip(fmt.Sprintf("skipped: %s %s is missing (see %ss)", d.Kind, d.Name, d.Kind)), true
		}
	}
	return Result{}, false
}

// maskKey hides all but the last four characters of an access key ID.
func maskKey(k string) string {
	if len(k) <= 4 {
		return strings.Repeat("*", len(k))
	}
	return strings.Repeat("*", len(k)-4) + k[len(k)-4:]
}

// unread is err, from reading the connections table, without the words
// the check's own line already says.
// readStoppedEarly says why a bounded read of the connections table
// (the migration check's, the connections check's) that failed after it
// had read items (read > 0) stopped early, when what those showed is still
// worth saying: a slow table is no failure, nor one of low provisioned
// read capacity whose Scan the SDK gave up on, throttled.
func readStoppedEarly(err error, read int) (why string, stopped bool) {
	switch {
	case err == nil || read == 0:
		return "", false
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("at doctor's time limit of %s", checkTimeout), true
	case throttled(err):
		return "as DynamoDB throttled the reads (the table's read capacity is used up)", true
	}
	return "", false
}

// throttled reports whether err is DynamoDB's throttling: a call the SDK
// gave up on, or keys a batch call left unprocessed.
func throttled(err error) bool {
	return errors.Is(err, awsops.ErrThrottled) || retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// throttledFix is the fix of a read of the connections table that
// DynamoDB throttled before it read anything.
func throttledFix(env *Env) string {
	return "DynamoDB throttled the reads of table " + env.AWS.Tables.Connections + " (its read capacity is used up): run the doctor again later"
}

func unread(err error) string {
	return strings.TrimPrefix(err.Error(), "reading the connections table: ")
}
