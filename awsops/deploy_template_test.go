package awsops

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
)

// TestTemplateAndDeployAgree reads docs/template.yaml (the SAM way) and
// compares its routes, settings and permissions with what deploy makes, so
// the two ways to deploy stay in step.
func TestTemplateAndDeployAgree(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tpl := string(raw)
	one := func(pattern string) string {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(tpl)
		if m == nil {
			t.Fatalf("docs/template.yaml has no %s", pattern)
		}
		return m[1]
	}
	eq := func(what, tplValue, deployValue string) {
		t.Helper()
		if tplValue != deployValue {
			t.Errorf("%s: template %q, deploy %q", what, tplValue, deployValue)
		}
	}

	// The function.
	eq("runtime", one(`(?m)^\s+Runtime: (\S+)`), DeployRuntime)
	eq("handler", one(`(?m)^\s+Handler: (\S+)`), DeployHandler)
	eq("memory", one(`(?m)^\s+MemorySize: (\d+)`), strconv.Itoa(DeployMemoryMB))
	eq("architecture", one(`(?m)^\s+Architectures: \[(\w+)\]`), DefaultDeployArch)
	eq("function timeout default", one(`(?ms)FunctionTimeout:.*?Default: (\d+)`), strconv.Itoa(int(DefaultBrokerTimeout/time.Second)))
	eq("visibility timeout default", one(`(?ms)VisibilityTimeout:\n\s+Type: Number\n\s+Default: (\d+)`), strconv.Itoa(int(QueueSettings{}.VisibilityTimeout()/time.Second)))
	// Both queues take the largest envelope.
	sizes := regexp.MustCompile(`(?m)^\s+MaximumMessageSize: (\d+)`).FindAllStringSubmatch(tpl, -1)
	if len(sizes) != 2 {
		t.Errorf("docs/template.yaml sets MaximumMessageSize on %d queues; want both", len(sizes))
	}
	for _, m := range sizes {
		eq("maximum message size", m[1], Queues{}.DeadLetterInput().Attributes["MaximumMessageSize"])
		eq("maximum message size", m[1], Queues{}.MainInput("arn", QueueSettings{}).Attributes["MaximumMessageSize"])
	}
	// The environment: the template always has the mapping (empty by
	// default); deploy sets it when one is configured.
	var tplEnv []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(SOCKS_\w+): `).FindAllStringSubmatch(tpl, -1) {
		tplEnv = append(tplEnv, m[1])
	}
	withMapping := &Deployer{Spec: DeploySpec{Stack: "s", Region: "us-east-1", EventMapping: `{"topics":["/detail/id"]}`}}
	var deployEnv []string
	for k := range withMapping.FunctionEnvironment() {
		deployEnv = append(deployEnv, k)
	}
	if !sameSet(tplEnv, deployEnv) || len(tplEnv) != len(deployEnv) {
		t.Errorf("environment: template %v, deploy %v", tplEnv, deployEnv)
	}

	// The event source mapping.
	eq("batch size", one(`(?m)^\s+BatchSize: (\d+)`), strconv.Itoa(DeployBatchSize))
	eq("batching window", one(`(?m)^\s+MaximumBatchingWindowInSeconds: (\d+)`), strconv.Itoa(DeployBatchWindow))
	eq("function response types", one(`(?m)^\s+FunctionResponseTypes: \[(\w+)\]`), reportBatchItemFailures)
	eq("max topics default", one(`(?ms)MaxTopics:\n\s+Type: Number\n\s+Default: (\d+)`), strconv.Itoa(pubsub.MaxTopicsPerConnection))
	eq("max connections per geek default", one(`(?ms)MaxConnectionsPerGeek:\n\s+Type: Number\n\s+Default: (\d+)`), strconv.Itoa(routes.DefaultMaxConnectionsPerGeek))
	eq("maximum concurrency", one(`(?ms)MaximumConcurrency:\n\s+Type: Number\n\s+Default: (\d+)`), strconv.Itoa(DefaultMaximumConcurrency))

	// The API, its routes and stage.
	eq("protocol", one(`(?m)^\s+ProtocolType: (\S+)`), "WEBSOCKET")
	eq("route selection", one(`(?m)^\s+RouteSelectionExpression: (\S+)`), DeployRouteSelection)
	eq("integration type", one(`(?m)^\s+IntegrationType: (\S+)`), "AWS_PROXY")
	eq("throttling burst", one(`(?m)^\s+ThrottlingBurstLimit: (\d+)`), strconv.Itoa(DefaultThrottlingBurstLimit))
	eq("throttling rate", one(`(?m)^\s+ThrottlingRateLimit: (\d+)`), strconv.Itoa(DefaultThrottlingRateLimit))
	routeRE := regexp.MustCompile(`(?ms)Type: AWS::ApiGatewayV2::Route\n\s+Properties:\n(.*?)\n\n`)
	var tplRoutes, deployRoutes []string
	for _, m := range routeRE.FindAllStringSubmatch(tpl+"\n\n", -1) {
		key := regexp.MustCompile(`RouteKey: (\S+)`).FindStringSubmatch(m[1])
		if key == nil {
			t.Fatalf("a route without a key: %s", m[1])
		}
		twoWay := strings.Contains(m[1], "RouteResponseSelectionExpression: $default")
		tplRoutes = append(tplRoutes, key[1]+" two-way="+strconv.FormatBool(twoWay))
	}
	for _, r := range DeployRoutes {
		deployRoutes = append(deployRoutes, r.Key+" two-way="+strconv.FormatBool(r.TwoWay))
	}
	slices.Sort(tplRoutes)
	slices.Sort(deployRoutes)
	if !slices.Equal(tplRoutes, deployRoutes) {
		t.Errorf("routes: template %v, deploy %v", tplRoutes, deployRoutes)
	}
	if n, want := strings.Count(tpl, "Type: AWS::ApiGatewayV2::RouteResponse\n"), 4; n != want {
		t.Errorf("template has %d route responses; deploy makes one per two-way route (%d)", n, want)
	}

	// The invoke permission.
	eq("permission action", one(`(?ms)InvokePermission:.*?Action: (\S+)`), "lambda:InvokeFunction")
	eq("permission principal", one(`(?ms)InvokePermission:.*?Principal: (\S+)`), "apigateway.amazonaws.com")
	eq("permission source", one(`(?ms)InvokePermission:.*?SourceArn: !Sub "arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{WebSocketApi\}(/\*)"`), "/*")

	// The role's policy: the same statements and actions (the template's
	// log permissions come from SAM; deploy states them).
	d := &Deployer{Spec: DeploySpec{Stack: "s", Region: "us-east-1"}.withDefaults()}
	d.st = deployState{part: "aws", account: "1", tables: d.Spec.Tables(), queues: d.Spec.Queues(), apiID: "api"}
	policy := d.RolePolicy()
	resolve := templateResolver(t, d)
	for _, s := range policy.Statement {
		if s.Sid == "Logs" {
			continue
		}
		block := one(`(?ms)- Sid: ` + s.Sid + `\n(.*?)(?:\n\s+- Sid:|\n\s+Events:)`)
		var actions []string
		for _, m := range regexp.MustCompile(`(?m)(?:^\s+- |Action: )([a-z0-9-]+:[A-Za-z]+)\s*$`).FindAllStringSubmatch(block, -1) {
			actions = append(actions, m[1])
		}
		if !sameSet(actions, s.Action) {
			t.Errorf("statement %s: template %v, deploy %v", s.Sid, actions, s.Action)
		}
		var resources []string
		for _, m := range regexp.MustCompile(`(?m)^\s+- (!GetAtt \S+|!Sub "[^"]*")\s*$`).FindAllStringSubmatch(block, -1) {
			resources = append(resources, resolve(m[1]))
		}
		if !sameSet(resources, s.Resource) || len(resources) != len(s.Resource) {
			t.Errorf("statement %s: template resources %v, deploy %v", s.Sid, resources, s.Resource)
		}
	}
}

// templateARNs are the ARNs of the template's resources as deploy names
// them, for stack "s" in us-east-1 of account "1" with API "api".
func templateARNs(d *Deployer) map[string]string {
	q, tb := d.Spec.Queues(), d.Spec.Tables()
	return map[string]string{
		"ConnectionsTable": d.arn("dynamodb", "table/"+tb.Connections),
		"ChatterTable":     d.arn("dynamodb", "table/"+tb.ChatterIDs),
		"ReportsTable":     d.arn("dynamodb", "table/"+tb.Reports),
		"EnvelopeQueue":    d.arn("sqs", q.Main),
		"DeadLetterQueue":  d.arn("sqs", q.DeadLetter),
	}
}

// templateResolver turns a template reference (!GetAtt X.Arn, or !Sub
// "...") into the ARN it stands for in deploy's terms.
func templateResolver(t *testing.T, d *Deployer) func(string) string {
	arns := templateARNs(d)
	return func(ref string) string {
		t.Helper()
		if name, ok := strings.CutPrefix(ref, "!GetAtt "); ok {
			arn, found := arns[strings.TrimSuffix(name, ".Arn")]
			if !found {
				t.Fatalf("docs/template.yaml refers to %s, which deploy does not make", ref)
			}
			return arn
		}
		sub := strings.Trim(strings.TrimPrefix(ref, "!Sub "), `"`)
		vars := map[string]string{"AWS::Partition": d.st.part, "AWS::Region": d.Spec.Region, "AWS::AccountId": d.st.account, "WebSocketApi": d.st.apiID, "Stage": d.Spec.Stage}
		for k, v := range arns {
			vars[k+".Arn"] = v
		}
		return regexp.MustCompile(`\$\{([^}]+)\}`).ReplaceAllStringFunc(sub, func(m string) string {
			v, found := vars[m[2:len(m)-1]]
			if !found {
				t.Fatalf("docs/template.yaml: %s in %s is not known here", m, ref)
			}
			return v
		})
	}
}

func TestFunctionEnvironmentCarriesTheLimits(t *testing.T) {
	d := &Deployer{Spec: DeploySpec{Stack: "s", Region: "us-east-1"}}
	env := d.FunctionEnvironment()
	if env[routes.EnvMaxTopics] != strconv.Itoa(pubsub.MaxTopicsPerConnection) || env[routes.EnvMaxConnectionsPerGeek] != strconv.Itoa(routes.DefaultMaxConnectionsPerGeek) {
		t.Errorf("default limits in the environment: %v", env)
	}
	d.Spec.MaxTopics, d.Spec.MaxConnectionsPerGeek = 7, 3
	env = d.FunctionEnvironment()
	// What the function does with them: the same parse the Lambda runs.
	h := &routes.Handler{}
	if err := h.SetLimitsFromEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if h.MaxTopics != 7 || h.MaxConnectionsPerGeek != 3 {
		t.Errorf("the function would run with topics %d, connections per geek %d; want 7, 3", h.MaxTopics, h.MaxConnectionsPerGeek)
	}
}
