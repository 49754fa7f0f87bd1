package awsops

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// checkDeployed reads the deployed stack back with the SDK and checks each
// setting against docs/template.yaml's.
func checkDeployed(t *testing.T, cp *ControlPlane, d *Deployer, res DeployResult) {
	ctx := t.Context()
	fn, err := cp.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(d.Spec.FunctionName())})
	if err != nil {
		t.Fatal(err)
	}
	c := fn.Configuration
	if string(c.Runtime) != "provided.al2023" || aws.ToString(c.Handler) != "bootstrap" || aws.ToInt32(c.Timeout) != 30 || aws.ToInt32(c.MemorySize) != 256 {
		t.Errorf("function: runtime %s handler %s timeout %d memory %d", c.Runtime, aws.ToString(c.Handler), aws.ToInt32(c.Timeout), aws.ToInt32(c.MemorySize))
	}
	if c.Environment == nil || c.Environment.Variables["SOCKS_STACK"] != d.Spec.Stack || c.Environment.Variables["SOCKS_CALLBACK_URL"] != res.CallbackURL {
		t.Errorf("function environment: %+v, want SOCKS_STACK=%s SOCKS_CALLBACK_URL=%s", c.Environment, d.Spec.Stack, res.CallbackURL)
	}
	if fn.Tags[TagStack] != d.Spec.Stack {
		t.Errorf("function tags: %v", fn.Tags)
	}

	api := apigw(t, cp)
	a, err := api.GetApi(ctx, &apigatewayv2.GetApiInput{ApiId: aws.String(res.APIID)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.RouteSelectionExpression) != "$request.body.action" || a.ProtocolType != "WEBSOCKET" || a.Tags[TagStack] != d.Spec.Stack {
		t.Errorf("api: %s %s %v", aws.ToString(a.RouteSelectionExpression), a.ProtocolType, a.Tags)
	}
	ints, err := api.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: aws.String(res.APIID)})
	if err != nil || len(ints.Items) != 1 {
		t.Fatalf("integrations: %+v %v", ints, err)
	}
	in := ints.Items[0]
	if in.IntegrationType != "AWS_PROXY" || !strings.Contains(aws.ToString(in.IntegrationUri), ":function:"+d.Spec.FunctionName()+"/invocations") ||
		aws.ToString(in.IntegrationUri) != "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"+aws.ToString(c.FunctionArn)+"/invocations" {
		t.Errorf("integration: %s %s", in.IntegrationType, aws.ToString(in.IntegrationUri))
	}
	routes, err := api.GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: aws.String(res.APIID)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range routes.Items {
		key := aws.ToString(r.RouteKey)
		keys = append(keys, key)
		if aws.ToString(r.Target) != "integrations/"+aws.ToString(in.IntegrationId) {
			t.Errorf("route %s targets %s", key, aws.ToString(r.Target))
		}
		twoWay := key != "$connect" && key != "$disconnect"
		if rrse := aws.ToString(r.RouteResponseSelectionExpression); twoWay != (rrse == "$default") {
			t.Errorf("route %s: route response selection %q (two-way %v)", key, rrse, twoWay)
		}
		// moto cannot list route responses: where it can, each two-way
		// route has exactly its $default one.
		rr, err := api.GetRouteResponses(ctx, &apigatewayv2.GetRouteResponsesInput{ApiId: aws.String(res.APIID), RouteId: r.RouteId},
			func(o *apigatewayv2.Options) { o.RetryMaxAttempts = 1 })
		if err == nil && twoWay != (len(rr.Items) == 1 && aws.ToString(rr.Items[0].RouteResponseKey) == "$default") {
			t.Errorf("route %s: route responses %+v (two-way %v)", key, rr.Items, twoWay)
		}
	}
	slices.Sort(keys)
	if want := []string{"$connect", "$default", "$disconnect", "ping", "subscribe", "unsubscribe"}; !slices.Equal(keys, want) {
		t.Errorf("routes %v, want %v", keys, want)
	}
	st, err := api.GetStage(ctx, &apigatewayv2.GetStageInput{ApiId: aws.String(res.APIID), StageName: aws.String("prod")})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(st.AutoDeploy) || st.DefaultRouteSettings == nil || aws.ToInt32(st.DefaultRouteSettings.ThrottlingBurstLimit) != 500 || aws.ToFloat64(st.DefaultRouteSettings.ThrottlingRateLimit) != 1000 {
		t.Errorf("stage: %+v %+v", st, st.DefaultRouteSettings)
	}

	perm, err := FunctionPermission(ctx, cp.Lambda, d.Spec.FunctionName())
	if err != nil || perm == nil {
		t.Fatalf("permission: %v %v", perm, err)
	}
	if want := "arn:aws:execute-api:us-east-1:123456789012:" + res.APIID + "/*"; perm.SourceARN() != want || !strings.Contains(string(perm.Principal), "apigateway.amazonaws.com") || !strings.Contains(string(perm.Action), "lambda:InvokeFunction") {
		t.Errorf("permission: source %s (want %s), principal %s, action %s", perm.SourceARN(), want, perm.Principal, perm.Action)
	}

	m, err := StackMapping(ctx, cp.Lambda, d.Spec.FunctionName(), "")
	if err != nil || m == nil {
		t.Fatalf("mapping: %v %v", m, err)
	}
	if aws.ToString(m.State) != "Enabled" || aws.ToInt32(m.BatchSize) != 10 || len(m.FunctionResponseTypes) != 1 || m.FunctionResponseTypes[0] != "ReportBatchItemFailures" ||
		!strings.HasSuffix(aws.ToString(m.EventSourceArn), ":"+d.Spec.Queues().Main) {
		t.Errorf("mapping: state %s batch %d types %v source %s", aws.ToString(m.State), aws.ToInt32(m.BatchSize), m.FunctionResponseTypes, aws.ToString(m.EventSourceArn))
	}

	role, err := cp.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(d.Spec.RoleName())})
	if err != nil || aws.ToString(role.Role.Arn) != aws.ToString(c.Role) {
		t.Fatalf("role: %v (function role %s)", err, aws.ToString(c.Role))
	}
	pol, err := cp.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(d.Spec.RoleName()), PolicyName: aws.String(DeployPolicyName)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePolicy(aws.ToString(pol.PolicyDocument))
	if err != nil {
		t.Fatal(err)
	}
	// The golden policy, with the stack's names and API ID put in.
	raw, err := os.ReadFile(filepath.Join("testdata", "deploy-role-policy.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden := strings.NewReplacer("STACK", d.Spec.Stack, "API_ID", res.APIID).Replace(string(raw))
	var want PolicyDocument
	if err := json.Unmarshal([]byte(golden), &want); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.MarshalIndent(got, "", "  ")
	wantJSON, _ := json.MarshalIndent(want, "", "  ")
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("role policy:\n%s\nwant (testdata/deploy-role-policy.golden.json):\n%s", gotJSON, wantJSON)
	}
}

func apigw(t *testing.T, cp *ControlPlane) *apigatewayv2.Client {
	c, ok := cp.APIGW.(*apigatewayv2.Client)
	if !ok {
		t.Fatal("not an SDK client")
	}
	return c
}
