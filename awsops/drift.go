package awsops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/pubsub"
)

// Aspects of a resource that CheckDrift compares.
const (
	// AspectMissing: the resource does not exist. This is not a conflict:
	// provision creates it.
	AspectMissing = "missing"
	// AspectStatus: the table is being deleted or cannot be used.
	AspectStatus = "status"
	// AspectKeySchema: the table's primary key differs.
	AspectKeySchema = "key schema"
	// AspectIndex: a global secondary index is absent or differs (the
	// Aspect reads "index by-geek").
	AspectIndex = "index"
	// AspectTTL: time to live is off or on another attribute.
	AspectTTL = "time to live"
	// AspectRedrive: the main queue's redrive policy is absent or wrong.
	AspectRedrive = "redrive policy"
	// AspectVisibility: the main queue's visibility timeout is too short.
	AspectVisibility = "visibility timeout"
	// AspectMessageSize: a queue refuses messages socks may send (under
	// 1 MiB: queues made before SQS's limit rose in 2025 keep 256 KiB).
	AspectMessageSize = "maximum message size"
)

// Resource kinds.
const (
	KindTable = "table"
	KindQueue = "queue"
)

// Drift is one difference between a table or queue as it is and as socks
// provisions it: what is, what should be, and how to fix it.
type Drift struct {
	// Kind is KindTable or KindQueue; Name the table or queue name.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Aspect names what differs (one of the Aspect constants; an index
	// reads "index NAME").
	Aspect string `json:"aspect"`
	Is     string `json:"is"`
	Want   string `json:"want"`
	Fix    string `json:"fix"`
}

// Missing reports whether the drift is only that the resource does not
// exist yet, which provision fixes by creating it.
func (d Drift) Missing() bool { return d.Aspect == AspectMissing }

// String renders the drift on one line.
func (d Drift) String() string {
	return fmt.Sprintf("%s %s: %s is %s; want %s; fix: %s", d.Kind, d.Name, d.Aspect, d.Is, d.Want, d.Fix)
}

// Conflicts returns the drifts that provision must not paper over: every
// drift except missing resources and repairs (Drift.Repair).
func Conflicts(drifts []Drift) []Drift {
	var out []Drift
	for _, d := range drifts {
		if !d.Missing() && !d.Repair() {
			out = append(out, d)
		}
	}
	return out
}

// DriftTableAPI is the part of the DynamoDB client CheckDrift calls (read
// only); *dynamodb.Client and TableAdminAPI satisfy it.
type DriftTableAPI interface {
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, params *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
}

// DriftQueueAPI is the part of the SQS client CheckDrift calls (read only);
// *sqs.Client and QueueAdminAPI satisfy it.
type DriftQueueAPI interface {
	GetQueueUrl(ctx context.Context, params *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, params *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var (
	_ DriftTableAPI = (*dynamodb.Client)(nil)
	_ DriftTableAPI = TableAdminAPI(nil)
	_ DriftQueueAPI = (*sqs.Client)(nil)
	_ DriftQueueAPI = QueueAdminAPI(nil)
)

// CheckDrift compares the stack's tables and queues with the shape provision
// creates (Tables.CreateInputs, Tables.TTLInputs, Queues.MainInput) and
// returns every difference, tables first then the dead-letter queue and the
// main queue. A resource that does not exist is one drift with
// AspectMissing; Conflicts filters those out. It only reads: it never
// changes anything. The error is for calls that failed (no permission, an
// endpoint that cannot be reached), explained.
func CheckDrift(ctx context.Context, db DriftTableAPI, sq DriftQueueAPI, t Tables, q Queues, s QueueSettings) ([]Drift, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	inputs := t.CreateInputs()
	found := make([][]Drift, len(inputs))
	g, gctx := errgroup.WithContext(ctx)
	for i, in := range inputs {
		g.Go(func() error {
			d, err := tableDrift(gctx, db, in)
			found[i] = d
			return err
		})
	}
	var queueDrifts []Drift
	g.Go(func() error {
		d, err := queueDrift(gctx, sq, q, s)
		queueDrifts = d
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []Drift
	for _, d := range found {
		out = append(out, d...)
	}
	return append(out, queueDrifts...), nil
}

// skipCRC turns off the DynamoDB client's CRC32 check of one response.
// Error responses can lack the X-Amz-Crc32 header (DynamoDB Local's always
// do), and the SDK then logs a spurious "failed to close HTTP response body"
// warning (aws/aws-sdk-go-v2#3545) — on every table that does not exist,
// which is the normal answer here. The responses are small and TLS protects
// them.
func skipCRC(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }

// QuietNotFound wraps api so that its DescribeTable calls skip the CRC32
// check (see skipCRC): for waiters that poll until a table is gone.
func QuietNotFound(api TableAdminAPI) TableAdminAPI { return quietTables{api} }

type quietTables struct{ TableAdminAPI }

func (q quietTables) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return q.TableAdminAPI.DescribeTable(ctx, in, append(optFns, skipCRC)...)
}

// tableDrift compares one table with the input that creates it.
func tableDrift(ctx context.Context, api DriftTableAPI, want *dynamodb.CreateTableInput) ([]Drift, error) {
	name := aws.ToString(want.TableName)
	drift := func(aspect, is, should, fix string) Drift {
		return Drift{Kind: KindTable, Name: name, Aspect: aspect, Is: is, Want: should, Fix: fix}
	}
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: want.TableName}, skipCRC)
	var notFound *dynamotypes.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return []Drift{drift(AspectMissing, "absent", "a table keyed by "+keyString(want.KeySchema, want.AttributeDefinitions), "run `socks provision`")}, nil
	}
	if err != nil {
		return nil, Explain(wrapTable("DescribeTable", name, err))
	}
	desc := out.Table
	if desc == nil {
		return nil, fmt.Errorf("DescribeTable on table %s returned no description", name)
	}
	var drifts []Drift
	switch desc.TableStatus {
	case dynamotypes.TableStatusActive, dynamotypes.TableStatusUpdating, "":
	case dynamotypes.TableStatusCreating:
		// Another provision or a template is making it: it takes no
		// reads or writes yet, and its TTL is not on yet.
		drifts = append(drifts, drift(AspectStatus, string(desc.TableStatus), string(dynamotypes.TableStatusActive),
			"something else is creating it: wait until it is active (aws dynamodb wait table-exists --table-name "+name+"), then run `socks provision` again"))
	case dynamotypes.TableStatusDeleting:
		drifts = append(drifts, drift(AspectStatus, string(desc.TableStatus), string(dynamotypes.TableStatusActive),
			"wait until the table is gone (aws dynamodb wait table-not-exists --table-name "+name+"), then run `socks provision`"))
		return drifts, nil
	default:
		drifts = append(drifts, drift(AspectStatus, string(desc.TableStatus), string(dynamotypes.TableStatusActive),
			"see the table in the DynamoDB console: it cannot be used in this state"))
	}

	wantKey := keyString(want.KeySchema, want.AttributeDefinitions)
	if isKey := keyString(desc.KeySchema, desc.AttributeDefinitions); isKey != wantKey {
		drifts = append(drifts, drift(AspectKeySchema, isKey, wantKey,
			"a table's key cannot change: if it holds nothing you need, delete it (aws dynamodb delete-table --table-name "+name+
				") and run `socks provision`; otherwise choose another --stack"))
	}

	for _, gsi := range want.GlobalSecondaryIndexes {
		index := aws.ToString(gsi.IndexName)
		aspect := AspectIndex + " " + index
		shouldIndex := indexString(gsi.KeySchema, want.AttributeDefinitions, gsi.Projection)
		i := slices.IndexFunc(desc.GlobalSecondaryIndexes, func(d dynamotypes.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(d.IndexName) == index
		})
		if i < 0 {
			drifts = append(drifts, drift(aspect, "absent", shouldIndex, "add it: "+createIndexCommand(name, want, gsi)))
			continue
		}
		got := desc.GlobalSecondaryIndexes[i]
		if st := got.IndexStatus; st != "" && st != dynamotypes.IndexStatusActive {
			// DynamoDB refuses reads of an index that is not active
			// (ValidationException): listing and pruning would fail.
			is := "being built (" + string(st)
			if aws.ToBool(got.Backfilling) {
				is += ", backfilling"
			}
			is += ")"
			fix := "wait until it is ACTIVE (aws dynamodb describe-table --table-name " + name +
				" --query 'Table.GlobalSecondaryIndexes[].[IndexName,IndexStatus]'), then run `socks provision` again"
			if st == dynamotypes.IndexStatusDeleting {
				is = "being deleted (" + string(st) + ")"
				fix = "wait until the deletion ends, then add it: " + createIndexCommand(name, want, gsi)
			}
			drifts = append(drifts, drift(aspect, is, shouldIndex+", active", fix))
			continue
		}
		if isIndex := indexString(got.KeySchema, desc.AttributeDefinitions, got.Projection); isIndex != shouldIndex {
			drifts = append(drifts, drift(aspect, isIndex, shouldIndex,
				"an index cannot change in place: delete it (aws dynamodb update-table --table-name "+name+
					` --global-secondary-index-updates '[{"Delete":{"IndexName":"`+index+`"}}]'), wait for the deletion, then add it: `+
					createIndexCommand(name, want, gsi)))
		}
	}

	ttl, err := api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: want.TableName}, skipCRC)
	if err != nil {
		return nil, Explain(wrapTable("DescribeTimeToLive", name, err))
	}
	if d, bad := ttlDrift(name, ttl.TimeToLiveDescription); bad {
		drifts = append(drifts, drift(AspectTTL, d.Is, d.Want, d.Fix))
	}
	return drifts, nil
}

// ttlDrift compares a table's time to live with "on, attribute expiresAt".
func ttlDrift(table string, desc *dynamotypes.TimeToLiveDescription) (Drift, bool) {
	should := "on, attribute " + attrTTL
	enable := fmt.Sprintf("aws dynamodb update-time-to-live --table-name %s --time-to-live-specification Enabled=true,AttributeName=%s", table, attrTTL)
	status, attr := dynamotypes.TimeToLiveStatusDisabled, ""
	if desc != nil {
		status, attr = desc.TimeToLiveStatus, aws.ToString(desc.AttributeName)
	}
	switch status {
	case dynamotypes.TimeToLiveStatusEnabled, dynamotypes.TimeToLiveStatusEnabling:
		if attr == attrTTL {
			return Drift{}, false
		}
		return Drift{
			Is:   "on, attribute " + attr,
			Want: should,
			Fix: fmt.Sprintf("turn it off (aws dynamodb update-time-to-live --table-name %s --time-to-live-specification Enabled=false,AttributeName=%s), then on for %s (%s); DynamoDB allows one change an hour",
				table, attr, attrTTL, enable),
		}, true
	case dynamotypes.TimeToLiveStatusDisabling:
		return Drift{Is: "being turned off", Want: should, Fix: "wait for it to be off (up to an hour), then " + enable}, true
	default:
		return Drift{Is: "off: expired records are never deleted", Want: should, Fix: enable}, true
	}
}

// keyString renders a key schema with the attribute types, e.g.
// "partition key pk (S), sort key sk (S)".
func keyString(key []dynamotypes.KeySchemaElement, defs []dynamotypes.AttributeDefinition) string {
	types := make(map[string]string, len(defs))
	for _, d := range defs {
		types[aws.ToString(d.AttributeName)] = string(d.AttributeType)
	}
	var hash, sort string
	for _, k := range key {
		name := aws.ToString(k.AttributeName)
		part := name
		if t := types[name]; t != "" {
			part += " (" + t + ")"
		}
		switch k.KeyType {
		case dynamotypes.KeyTypeHash:
			hash = "partition key " + part
		case dynamotypes.KeyTypeRange:
			sort = "sort key " + part
		}
	}
	switch {
	case hash == "" && sort == "":
		return "no key"
	case sort == "":
		return hash + ", no sort key"
	case hash == "":
		return sort
	}
	return hash + ", " + sort
}

// indexString renders an index's key and projection.
func indexString(key []dynamotypes.KeySchemaElement, defs []dynamotypes.AttributeDefinition, p *dynamotypes.Projection) string {
	proj := "no projection"
	if p != nil {
		switch p.ProjectionType {
		case dynamotypes.ProjectionTypeAll:
			proj = "all attributes projected"
		case dynamotypes.ProjectionTypeKeysOnly:
			proj = "keys only projected"
		default:
			attrs := slices.Clone(p.NonKeyAttributes)
			slices.Sort(attrs)
			proj = "keys and " + strings.Join(attrs, ", ") + " projected"
		}
	}
	return keyString(key, defs) + ", " + proj
}

// createIndexCommand is the AWS CLI command that adds gsi to an existing
// on-demand table.
func createIndexCommand(table string, in *dynamodb.CreateTableInput, gsi dynamotypes.GlobalSecondaryIndex) string {
	types := make(map[string]string, len(in.AttributeDefinitions))
	for _, d := range in.AttributeDefinitions {
		types[aws.ToString(d.AttributeName)] = string(d.AttributeType)
	}
	var defs []string
	type keyElem struct {
		AttributeName string
		KeyType       string
	}
	var keys []keyElem
	for _, k := range gsi.KeySchema {
		name := aws.ToString(k.AttributeName)
		defs = append(defs, "AttributeName="+name+",AttributeType="+types[name])
		keys = append(keys, keyElem{name, string(k.KeyType)})
	}
	create := map[string]any{"Create": map[string]any{
		"IndexName":  aws.ToString(gsi.IndexName),
		"KeySchema":  keys,
		"Projection": map[string]string{"ProjectionType": string(gsi.Projection.ProjectionType)},
	}}
	update, _ := json.Marshal([]any{create})
	return fmt.Sprintf("aws dynamodb update-table --table-name %s --attribute-definitions %s --global-secondary-index-updates '%s'",
		table, strings.Join(defs, " "), update)
}

// queueState is what CheckDrift learned about one queue.
type queueState struct {
	url   string
	attrs map[string]string
}

// describeQueue returns the queue's URL and attributes, or a nil state when
// it does not exist.
func describeQueue(ctx context.Context, api DriftQueueAPI, name string) (*queueState, error) {
	u, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	var missing *sqstypes.QueueDoesNotExist
	if errors.As(err, &missing) {
		return nil, nil
	}
	if err != nil {
		return nil, Explain(wrapQueue("GetQueueUrl", name, err))
	}
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: u.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameQueueArn,
			sqstypes.QueueAttributeNameVisibilityTimeout,
			sqstypes.QueueAttributeNameRedrivePolicy,
			sqstypes.QueueAttributeNameMaximumMessageSize,
		},
	})
	if errors.As(err, &missing) {
		return nil, nil
	}
	if err != nil {
		return nil, Explain(wrapQueue("GetQueueAttributes", name, err))
	}
	return &queueState{url: aws.ToString(u.QueueUrl), attrs: out.Attributes}, nil
}

// queueDrift compares the dead-letter queue and the main queue with
// Queues.MainInput.
func queueDrift(ctx context.Context, api DriftQueueAPI, q Queues, s QueueSettings) ([]Drift, error) {
	dead, err := describeQueue(ctx, api, q.DeadLetter)
	if err != nil {
		return nil, err
	}
	main, err := describeQueue(ctx, api, q.Main)
	if err != nil {
		return nil, err
	}
	var drifts []Drift
	if dead == nil {
		drifts = append(drifts, Drift{Kind: KindQueue, Name: q.DeadLetter, Aspect: AspectMissing, Is: "absent",
			Want: "the dead-letter queue of " + q.Main, Fix: "run `socks provision`"})
	}
	if dead != nil {
		drifts = append(drifts, sizeDrift(q.DeadLetter, dead)...)
	}
	if main == nil {
		return append(drifts, Drift{Kind: KindQueue, Name: q.Main, Aspect: AspectMissing, Is: "absent",
			Want: "the envelope queue, dead-lettering to " + q.DeadLetter, Fix: "run `socks provision`"}), nil
	}
	drifts = append(drifts, sizeDrift(q.Main, main)...)
	drift := func(aspect, is, should, fix string) Drift {
		return Drift{Kind: KindQueue, Name: q.Main, Aspect: aspect, Is: is, Want: should, Fix: fix}
	}
	deadARN := ""
	if dead != nil {
		deadARN = dead.attrs[string(sqstypes.QueueAttributeNameQueueArn)]
	}
	if deadARN == "" {
		// The dead-letter queue does not exist yet: its ARN will be the
		// main queue's with the dead-letter queue's name.
		deadARN = siblingARN(main.attrs[string(sqstypes.QueueAttributeNameQueueArn)], q.DeadLetter)
	}
	maxReceives := s.withDefaults().MaxReceives
	wantPolicy := fmt.Sprintf("dead-letter target %s, maxReceiveCount %d (above the broker's %d receives, so that the broker dead-letters first, with a reason)",
		q.DeadLetter, s.MaxReceiveCount(), maxReceives)
	policy, _ := json.Marshal(map[string]string{"deadLetterTargetArn": deadARN, "maxReceiveCount": strconv.Itoa(s.MaxReceiveCount())})
	attrs, _ := json.Marshal(map[string]string{string(sqstypes.QueueAttributeNameRedrivePolicy): string(policy)})
	setPolicy := fmt.Sprintf("aws sqs set-queue-attributes --queue-url %s --attributes '%s'", main.url, attrs)

	if raw := main.attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)]; raw == "" {
		drifts = append(drifts, drift(AspectRedrive, "none: a message that keeps failing is never moved to the dead letters", wantPolicy, setPolicy))
	} else {
		target, count, err := parseRedrivePolicy(raw)
		switch {
		case err != nil:
			drifts = append(drifts, drift(AspectRedrive, fmt.Sprintf("unreadable (%q %v)", raw, err), wantPolicy, setPolicy))
		case arnName(target) != q.DeadLetter || (deadARN != "" && target != deadARN):
			drifts = append(drifts, drift(AspectRedrive, fmt.Sprintf("dead-letter target %s, maxReceiveCount %d", target, count), wantPolicy, setPolicy))
		case count <= maxReceives:
			drifts = append(drifts, drift(AspectRedrive,
				fmt.Sprintf("dead-letter target %s, maxReceiveCount %d: SQS moves messages before the broker can record why", q.DeadLetter, count),
				wantPolicy, setPolicy))
		}
	}

	minVis := s.VisibilityTimeout()
	rawVis := main.attrs[string(sqstypes.QueueAttributeNameVisibilityTimeout)]
	vis, err := strconv.Atoi(rawVis)
	if err != nil || time.Duration(vis)*time.Second < minVis {
		is := rawVis + " s"
		if err != nil {
			is = fmt.Sprintf("unreadable (%q)", rawVis)
		}
		drifts = append(drifts, drift(AspectVisibility, is,
			fmt.Sprintf("at least %d s (6 × the broker's %s timeout, so that a batch in hand is never handed out again)",
				int(minVis/time.Second), s.withDefaults().BrokerTimeout),
			fmt.Sprintf("aws sqs set-queue-attributes --queue-url %s --attributes VisibilityTimeout=%d", main.url, int(minVis/time.Second))))
	}
	return drifts, nil
}

// sizeDrift reports a queue whose maximum message size is under the
// largest envelope socks sends (pubsub.MaxEnvelopeBytes). A queue that
// does not say (an emulator) is taken as fine.
func sizeDrift(name string, st *queueState) []Drift {
	raw, ok := st.attrs[string(sqstypes.QueueAttributeNameMaximumMessageSize)]
	if !ok {
		return nil
	}
	if n, err := strconv.Atoi(raw); err == nil && n >= pubsub.MaxEnvelopeBytes {
		return nil
	}
	return []Drift{{Kind: KindQueue, Name: name, Aspect: AspectMessageSize, Is: raw + " bytes",
		Want: fmt.Sprintf("%d bytes (1 MiB, the largest envelope socks sends; a smaller limit refuses big publishes)", pubsub.MaxEnvelopeBytes),
		Fix:  fmt.Sprintf("aws sqs set-queue-attributes --queue-url %s --attributes MaximumMessageSize=%d", st.url, pubsub.MaxEnvelopeBytes)}}
}

// redriveKeys are the keys of a redrive policy. SQS's are
// case-sensitive, where encoding/json would read "MaxReceiveCount" as
// maxReceiveCount: a policy with such a key is refused (pubsub.Keys).
var redriveKeys = pubsub.KeysOf[redrivePolicy]()

type redrivePolicy struct {
	Target string          `json:"deadLetterTargetArn"`
	Count  json.RawMessage `json:"maxReceiveCount"`
}

// maxRedriveCount is the largest maxReceiveCount SQS allows (1 the
// least).
const maxRedriveCount = 1000

// parseRedrivePolicy reads the target ARN and maxReceiveCount of a redrive
// policy; SQS writes the count as a number, some emulators as a string.
// Only a policy SQS could hold is read: its target an SQS queue's ARN,
// its count a whole number from 1 to 1000. Its error says what is wrong,
// in words that follow the policy.
func parseRedrivePolicy(raw string) (target string, count int, err error) {
	if reason := pubsub.CheckJSONObject([]byte(raw), redriveKeys); reason != "" {
		return "", 0, errors.New(reason)
	}
	var p redrivePolicy
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return "", 0, errors.New(pubsub.DescribeJSONError(err))
	}
	if p.Target == "" {
		return "", 0, errors.New("has no deadLetterTargetArn")
	}
	if !isQueueARN(p.Target) {
		return "", 0, fmt.Errorf("has deadLetterTargetArn %q, which is no SQS queue's ARN (arn:aws:sqs:REGION:ACCOUNT:QUEUE)", p.Target)
	}
	if len(p.Count) == 0 {
		return "", 0, errors.New("has no maxReceiveCount")
	}
	n, shown := string(p.Count), string(p.Count) // a JSON number as written
	switch p.Count[0] {
	case '"':
		_ = json.Unmarshal(p.Count, &n) // a string: it decoded above
		shown = strconv.Quote(n)
	case '[', '{', 't', 'f', 'n':
		shown = map[byte]string{'[': "a list", '{': "an object", 't': "true", 'f': "false", 'n': "null"}[p.Count[0]]
	}
	count, err = strconv.Atoi(n)
	switch {
	case errors.Is(err, strconv.ErrRange) || (err == nil && (count < 1 || count > maxRedriveCount)):
		// Atoi read n as digits: it is shown as it is.
		return "", 0, fmt.Errorf("has maxReceiveCount %s: SQS allows 1 to %d", n, maxRedriveCount)
	case err != nil || n[0] == '+': // 7.5, "seven", null; JSON writes no '+'
		return "", 0, fmt.Errorf("has maxReceiveCount %s, not a whole number", shown)
	}
	return p.Target, count, nil
}

// arnName is the resource name at the end of an ARN.
func arnName(arn string) string {
	return arn[strings.LastIndexByte(arn, ':')+1:]
}

// siblingARN is arn with its resource name replaced by name ("" when arn
// is empty).
func siblingARN(arn, name string) string {
	i := strings.LastIndexByte(arn, ':')
	if i < 0 {
		return ""
	}
	return arn[:i+1] + name
}
