package awsops

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

	// The tables and queues, as provision makes them (the template says
	// "exactly as socks provision creates them").
	checkTemplateState(t, tpl)

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

// checkTemplateState compares the tables and queues of the template tpl
// with Tables.CreateInputs, Tables.TTLInputs and Queues.CreateInputs for a
// stack named "s": names, billing, keys, index, TTL, queue attributes,
// redrive policy and tags.
func checkTemplateState(t *testing.T, tpl string) {
	all := func(pattern, block string) []string {
		var out []string
		for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(block, -1) {
			out = append(out, strings.Join(m[1:], " "))
		}
		return out
	}
	// blocks maps each resource of type kind by its name for stack "s".
	blocks := func(kind, nameKey string) map[string]string {
		out := map[string]string{}
		for _, m := range regexp.MustCompile(`(?ms)^  \w+:\n    Type: `+kind+`\n(.*?)\n\n`).FindAllStringSubmatch(tpl+"\n\n", -1) {
			name := regexp.MustCompile(nameKey + `: !Sub "\$\{Stack\}([\w-]+)"`).FindStringSubmatch(m[1])
			if name == nil {
				t.Fatalf("docs/template.yaml: a %s without a %s", kind, nameKey)
			}
			out["s"+name[1]] = m[1]
		}
		return out
	}
	tagsOf := func(block string) []string {
		return all(`\{ Key: "?([\w:]+)"?, Value: ([\w-]+) \}`, strings.ReplaceAll(block, "Value: !Ref Stack }", "Value: s }"))
	}

	tables := TablesFor("s")
	tplTables := blocks("AWS::DynamoDB::Table", "TableName")
	if len(tplTables) != len(tables.Names()) {
		t.Errorf("docs/template.yaml has tables %v; provision makes %v", slices.Sorted(maps.Keys(tplTables)), tables.Names())
	}
	ttl := map[string]string{}
	for _, in := range tables.TTLInputs() {
		ttl[aws.ToString(in.TableName)] = aws.ToString(in.TimeToLiveSpecification.AttributeName)
	}
	for _, in := range tables.CreateInputs() {
		name := aws.ToString(in.TableName)
		b, ok := tplTables[name]
		if !ok {
			t.Errorf("docs/template.yaml has no table %s", name)
			continue
		}
		var attrs, keys, indexes, tags []string
		for _, a := range in.AttributeDefinitions {
			attrs = append(attrs, aws.ToString(a.AttributeName)+" "+string(a.AttributeType))
		}
		addKeys := func(ks []dynamotypes.KeySchemaElement) {
			for _, k := range ks {
				keys = append(keys, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
			}
		}
		addKeys(in.KeySchema)
		for _, g := range in.GlobalSecondaryIndexes {
			addKeys(g.KeySchema)
			indexes = append(indexes, aws.ToString(g.IndexName)+" "+string(g.Projection.ProjectionType))
		}
		for _, tag := range in.Tags {
			tags = append(tags, aws.ToString(tag.Key)+" "+aws.ToString(tag.Value))
		}
		for _, c := range []struct {
			what     string
			tpl, got []string
		}{
			{"billing mode", all(`BillingMode: (\S+)`, b), []string{string(in.BillingMode)}},
			{"attribute definitions", all(`\{ AttributeName: (\w+), AttributeType: (\w+) \}`, b), attrs},
			{"key schemas (table, then index)", all(`\{ AttributeName: (\w+), KeyType: (\w+) \}`, b), keys},
			{"indexes", all(`(?s)IndexName: (\S+).*?ProjectionType: (\w+)`, b), indexes},
			{"TTL attribute", all(`TimeToLiveSpecification: \{ AttributeName: (\w+), Enabled: true \}`, b), []string{ttl[name]}},
			{"tags", tagsOf(b), tags},
		} {
			if !slices.Equal(c.tpl, c.got) {
				t.Errorf("table %s, %s: template %q, provision %q", name, c.what, c.tpl, c.got)
			}
		}
	}

	queues := QueuesFor("s")
	tplQueues := blocks("AWS::SQS::Queue", "QueueName")
	if len(tplQueues) != len(queues.Names()) {
		t.Errorf("docs/template.yaml has queues %v; provision makes %v", slices.Sorted(maps.Keys(tplQueues)), queues.Names())
	}
	visibility := regexp.MustCompile(`(?ms)VisibilityTimeout:\n\s+Type: Number\n\s+Default: (\d+)`).FindStringSubmatch(tpl)
	if visibility == nil {
		t.Fatal("docs/template.yaml has no VisibilityTimeout parameter")
	}
	for _, in := range queues.CreateInputs("arn:dead-letters", QueueSettings{}) {
		name := aws.ToString(in.QueueName)
		b, ok := tplQueues[name]
		if !ok {
			t.Errorf("docs/template.yaml has no queue %s", name)
			continue
		}
		got := map[string]string{}
		for _, m := range regexp.MustCompile(`(?m)^      (\w+): (\S+)`).FindAllStringSubmatch(b, -1) {
			switch m[1] {
			case "QueueName", "RedrivePolicy", "Tags":
			case "VisibilityTimeout":
				if m[2] != "!Ref" {
					t.Errorf("queue %s: VisibilityTimeout %s; want the parameter", name, m[2])
				}
				got[m[1]] = visibility[1]
			default:
				got[m[1]] = m[2]
			}
		}
		if dead := all(`deadLetterTargetArn: !GetAtt (\w+)\.Arn`, b); len(dead) > 0 {
			got["RedrivePolicy"] = strings.Join(dead, ",") + " after " + strings.Join(all(`maxReceiveCount: (\d+)`, b), ",")
		}
		want := map[string]string{}
		for k, v := range in.Attributes {
			want[k] = v
		}
		if p, ok := want["RedrivePolicy"]; ok {
			var policy struct{ DeadLetterTargetArn, MaxReceiveCount string }
			if err := json.Unmarshal([]byte(p), &policy); err != nil {
				t.Fatal(err)
			}
			if policy.DeadLetterTargetArn != "arn:dead-letters" {
				t.Fatalf("the redrive policy names %s", policy.DeadLetterTargetArn)
			}
			want["RedrivePolicy"] = "DeadLetterQueue after " + policy.MaxReceiveCount
		}
		if !maps.Equal(got, want) {
			t.Errorf("queue %s: template %v, provision %v", name, got, want)
		}
		var tags []string
		for k, v := range in.Tags {
			tags = append(tags, k+" "+v)
		}
		if !sameSet(tagsOf(b), tags) || len(tagsOf(b)) != len(tags) {
			t.Errorf("queue %s, tags: template %q, provision %q", name, tagsOf(b), tags)
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
