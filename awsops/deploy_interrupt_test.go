package awsops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/socks-dev/socks/internal/emulatortest"
)

// lostAnswers makes the nth call that changes something (Create*, Put*,
// Update*, Add*, Set*, Delete*, Tag*, Subscribe, Remove*) succeed on the server but fail in
// the client, as a Ctrl-C or a dropped connection right after the call
// does: the worst moment to stop, since the resource exists and deploy
// does not know it. It records the operations it saw.
type lostAnswers struct {
	mu    sync.Mutex
	n     int // 0: never
	calls []string
}

var errLost = errors.New("the answer was lost (injected)")

// config is cfg (emulatortest.MotoAWS's) with the answers lost.
func (l *lostAnswers) config(cfg aws.Config) aws.Config {
	cfg.APIOptions = slices.Clone(cfg.APIOptions)
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("lostAnswers", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			op := awsmiddleware.GetOperationName(ctx)
			if err != nil || !changes(op) {
				return out, md, err
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			l.calls = append(l.calls, awsmiddleware.GetServiceID(ctx)+" "+op)
			if len(l.calls) == l.n {
				return out, md, fmt.Errorf("%s: %w", op, errLost)
			}
			return out, md, nil
		}), middleware.After)
	})
	return cfg
}

func changes(op string) bool {
	for _, p := range []string{"Create", "Put", "Update", "Add", "Set", "Delete", "Tag", "Subscribe", "Remove"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

// TestAnInterruptedDeployIsFinishedByTheNextAndTornDown: deploy stopped
// right after each call that makes something (the call done, its answer
// lost) is finished by the next deploy, which makes nothing twice (one
// API, one integration, six routes, one stage, one permission, one
// mapping); then teardown leaves nothing of it.
func TestAnInterruptedDeployIsFinishedByTheNextAndTornDown(t *testing.T) {
	t.Parallel()
	cfg, moto := emulatortest.MotoAWS(t)
	zip := shellZip(t)
	topic, err := motoPlane(t).SNS.(*sns.Client).CreateTopic(t.Context(), &sns.CreateTopicInput{Name: aws.String(uniqueName("jobs"))})
	if err != nil {
		t.Fatal(err)
	}
	producers := func(stack string) Producers {
		return Producers{Rule: &EventRule{Name: RuleFor(stack), Sources: []string{"com.example"}, DetailTypes: []string{"Changed"}}, Topics: []string{aws.ToString(topic.TopicArn)}}
	}
	deployer := func(cp *ControlPlane, stack string, zip []byte) *Deployer {
		d := testDeployer(t, cp, stack, zip)
		d.Spec.Producers = producers(stack)
		return d
	}

	// The calls a deploy makes on an empty account.
	probe := &lostAnswers{}
	pcp := NewControlPlane(probe.config(cfg), Endpoints{All: moto})
	pd := deployer(pcp, uniqueName("count"), zip)
	removeStackAtCleanup(t, pcp, pd)
	deploy(t, pd, false)
	calls := probe.calls
	if len(calls) < 10 {
		t.Fatalf("a deploy made only %v", calls)
	}

	for n := 1; n <= len(calls); n++ {
		t.Run(fmt.Sprintf("after %d: %s", n, calls[n-1]), func(t *testing.T) {
			t.Parallel()
			lost := &lostAnswers{n: n}
			cp := NewControlPlane(lost.config(cfg), Endpoints{All: moto})
			stack := uniqueName("int")
			d := deployer(cp, stack, zip)
			removeStackAtCleanup(t, cp, d)
			if _, err := d.Deploy(t.Context(), false); !errors.Is(err, errLost) {
				t.Fatalf("deploy with the answer of call %d lost: %v", n, err)
			}
			res := deploy(t, deployer(motoPlane(t), stack, zip), false)
			if got := changed(deploy(t, deployer(motoPlane(t), stack, zip), true)); len(got) != 0 {
				t.Errorf("after the second deploy: %v", got)
			}
			checkOnlyOnce(t, motoPlane(t), res)

			td := testDeployer(t, motoPlane(t), stack, nil)
			if _, err := DeleteProducers(t.Context(), td.CP.Events, td.CP.SNS, td.CP.SQS, td.Spec.Queues(), producers(stack)); err != nil {
				t.Fatal(err)
			}
			steps, err := td.Deployed(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := td.Undeploy(t.Context(), steps); err != nil {
				t.Fatal(err)
			}
			if err := DeleteQueues(t.Context(), td.CP.SQS, td.Spec.Queues()); err != nil {
				t.Fatal(err)
			}
			if err := DeleteTables(t.Context(), td.CP.DB, td.Spec.Tables(), time.Minute); err != nil {
				t.Fatal(err)
			}
			for _, s := range deploy(t, deployer(motoPlane(t), stack, zip), true).Steps {
				if s.Action != ActionCreate {
					t.Errorf("after teardown %s is %s, want create", s, s.Action)
				}
			}
		})
	}
}

// checkOnlyOnce checks that the stack of res has one of each resource
// deploy makes once.
func checkOnlyOnce(t *testing.T, cp *ControlPlane, res DeployResult) {
	t.Helper()
	ctx := t.Context()
	apis, err := cp.APIGW.GetApis(ctx, &apigatewayv2.GetApisInput{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range apis.Items {
		if a.Tags[TagStack] == res.Stack || aws.ToString(a.Name) == res.Stack+"-websocket" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d APIs of the stack; want 1", n)
	}
	ints, err := cp.APIGW.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: aws.String(res.APIID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ints.Items) != 1 {
		t.Errorf("%d integrations; want 1", len(ints.Items))
	}
	routes, err := cp.APIGW.GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: aws.String(res.APIID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(routes.Items) != len(DeployRoutes) {
		keys := make([]string, 0, len(routes.Items))
		for _, r := range routes.Items {
			keys = append(keys, aws.ToString(r.RouteKey)+" "+aws.ToString(r.RouteId))
		}
		t.Errorf("%d routes; want %d: %v", len(routes.Items), len(DeployRoutes), keys)
	}
	stages, err := cp.APIGW.(*apigatewayv2.Client).GetStages(ctx, &apigatewayv2.GetStagesInput{ApiId: aws.String(res.APIID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(stages.Items) != 1 {
		t.Errorf("%d stages; want 1", len(stages.Items))
	}
	maps, err := cp.Lambda.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(res.Stack + "-socks")})
	if err != nil {
		t.Fatal(err)
	}
	if len(maps.EventSourceMappings) != 1 {
		t.Errorf("%d event source mappings; want 1", len(maps.EventSourceMappings))
	}
	pol, err := cp.Lambda.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(res.Stack + "-socks")})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(aws.ToString(pol.Policy), `"Sid"`); n != 1 {
		t.Errorf("the function's policy has %d statements; want 1: %s", n, aws.ToString(pol.Policy))
	}
}

// createdThenConflict answers each create of a resource with a unique
// name or key with the service's "already exists" error after the server
// has made it: what the SDK's retry of a create whose answer was lost
// gets from AWS. It records the operations it answered so.
type createdThenConflict struct {
	// skip are operations answered as the server did.
	skip  []string
	mu    sync.Mutex
	calls []string
}

// conflictCodes are AWS's answers to a create of what exists, by
// operation.
var conflictCodes = map[string]string{
	"CreateLogGroup":           "ResourceAlreadyExistsException",
	"CreateRole":               "EntityAlreadyExists",
	"CreateFunction":           "ResourceConflictException",
	"CreateRoute":              "ConflictException",
	"CreateRouteResponse":      "ConflictException",
	"CreateStage":              "ConflictException",
	"AddPermission":            "ResourceConflictException",
	"CreateEventSourceMapping": "ResourceConflictException",
}

func (c *createdThenConflict) config(cfg aws.Config) aws.Config {
	cfg.APIOptions = slices.Clone(cfg.APIOptions)
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("createdThenConflict", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			op := awsmiddleware.GetOperationName(ctx)
			code, ok := conflictCodes[op]
			if err != nil || !ok || slices.Contains(c.skip, op) {
				return out, md, err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.calls = append(c.calls, op)
			return out, md, &smithy.GenericAPIError{Code: code, Message: op + ": it already exists (injected)"}
		}), middleware.After)
	})
	return cfg
}

// TestADeployWhoseCreatesAnswerConflictReadsThemAgainAndFinishes: when
// the SDK retries a create the server had done (its answer lost in
// transit), AWS answers that it exists (API Gateway's ConflictException,
// Lambda's ResourceConflictException, IAM's EntityAlreadyExists, Logs'
// ResourceAlreadyExistsException), and deploy failed although the next
// deploy would have finished. Deploy now reads the step again and carries
// on: with every such create answered so, it finishes, makes nothing
// twice, and a second deploy has nothing to do.
func TestADeployWhoseCreatesAnswerConflictReadsThemAgainAndFinishes(t *testing.T) {
	t.Parallel()
	cfg, moto := emulatortest.MotoAWS(t)
	zip := shellZip(t)
	for name, skip := range map[string][]string{
		// moto cannot list route responses, so a route read again is
		// taken as having its response there, and CreateRouteResponse
		// is not called after a conflicting CreateRoute.
		"every create":    nil,
		"route responses": {"CreateRoute"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conflict := &createdThenConflict{skip: skip}
			cp := NewControlPlane(conflict.config(cfg), Endpoints{All: moto})
			stack := uniqueName("conflict")
			d := testDeployer(t, cp, stack, zip)
			removeStackAtCleanup(t, cp, d)
			res, err := d.Deploy(t.Context(), false)
			if err != nil {
				t.Fatalf("deploy with creates answered by a conflict: %v", err)
			}
			for op := range conflictCodes {
				if slices.Contains(skip, op) || skip == nil && op == "CreateRouteResponse" {
					continue
				}
				if !slices.Contains(conflict.calls, op) {
					t.Errorf("%s was never answered by a conflict (calls %v)", op, conflict.calls)
				}
			}
			if got := changed(deploy(t, testDeployer(t, motoPlane(t), stack, zip), true)); len(got) != 0 {
				t.Errorf("after the deploy: %v", got)
			}
			checkOnlyOnce(t, motoPlane(t), res)
		})
	}
}

// retriedAnswers makes the first attempt of each operation in ops succeed
// on the server and then fail in the client with a 502, inside the SDK's
// retry loop: an answer lost in transit (a proxy's 502, a reset
// connection), which the SDK's standard retryer sends again.
type retriedAnswers struct {
	mu   sync.Mutex
	ops  []string
	seen map[string]int
}

func (r *retriedAnswers) config(cfg aws.Config) aws.Config {
	cfg.APIOptions = slices.Clone(cfg.APIOptions)
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("retriedAnswers", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			op := awsmiddleware.GetOperationName(ctx)
			if err != nil || !slices.Contains(r.ops, op) {
				return out, md, err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.seen[op]++; r.seen[op] > 1 {
				return out, md, err
			}
			lost := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{}}}, Err: errors.New("the answer was lost (injected 502)")}
			return out, md, lost
		}), middleware.After)
	})
	return cfg
}

// TestARouteWhoseCreateIsAnsweredWithA502IsMadeOnce: the SDK's retryer
// sent a CreateRoute or CreateRouteResponse again when the first
// attempt's answer was lost (a 502 from a proxy, a reset connection),
// though the server had made it. API Gateway answers the second with
// ConflictException, which deploy handles; moto makes a second route of
// the same key, the duplicate route the fresh-clone runs saw now and
// then ("7 routes; want 6", unsubscribe twice, under load). Route creates
// are sent once, as the API's and the integration's are: a lost answer
// is looked for again before anything is sent again.
func TestARouteWhoseCreateIsAnsweredWithA502IsMadeOnce(t *testing.T) {
	t.Parallel()
	cfg, moto := emulatortest.MotoAWS(t)
	zip := shellZip(t)
	lost := &retriedAnswers{ops: []string{"CreateRoute", "CreateRouteResponse"}, seen: map[string]int{}}
	cp := NewControlPlane(lost.config(cfg), Endpoints{All: moto})
	stack := uniqueName("r502")
	d := testDeployer(t, cp, stack, zip)
	d.Sleep = func(context.Context, time.Duration) error { return nil }
	removeStackAtCleanup(t, cp, d)
	res, err := d.Deploy(t.Context(), false)
	if err != nil {
		t.Fatalf("deploy with a route create's answer lost: %v", err)
	}
	for _, op := range lost.ops {
		if lost.seen[op] == 0 {
			t.Errorf("%s was never called", op)
		}
	}
	checkOnlyOnce(t, motoPlane(t), res)
	if got := changed(deploy(t, testDeployer(t, motoPlane(t), stack, zip), true)); len(got) != 0 {
		t.Errorf("after the deploy: %v", got)
	}
}
