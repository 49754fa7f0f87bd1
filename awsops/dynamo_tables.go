package awsops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The table design; docs/tables.md explains it.
const (
	// Key attributes of the connections and chatter tables.
	attrPK = "pk"
	attrSK = "sk"
	// Key attributes of the by-geek index of the connections table. Only
	// connection items carry them, so the index is sparse: it holds one item
	// per connection and nothing else.
	attrGPK = "gpk"
	attrGSK = "gsk"
	// ByGeekIndex is the connections table's global secondary index, keyed
	// by geek: every connection of a geek, and a cheap walk over every
	// connection (it holds connection items only).
	ByGeekIndex = "by-geek"

	// attrReportID is the reports table's partition key (the message ID).
	attrReportID = "id"

	// attrTTL is the TTL attribute of every table: epoch seconds, rounded
	// up so that DynamoDB never deletes an item before it expired. TTL
	// deletes lag by up to about two days, so every read filters on it too.
	attrTTL = "expiresAt"

	// Key prefixes. '#' is reserved in geek and topic names
	// (pubsub.ValidateGeek), so keys cannot be confused.
	prefixConn    = "CONN#"
	prefixTopic   = "TOPIC#"
	prefixGeek    = "GEEK#"
	prefixChatter = "CHATTER#"
	skConnection  = "CONN"
)

// Tables names the DynamoDB tables of one stack.
type Tables struct {
	// Connections holds a connection item per connection (key CONN#id) and
	// a subscription item per (topic, connection) (key TOPIC#topic,
	// GEEK#geek#CONN#id), with the by-geek index.
	Connections string `json:"connections"`
	// ChatterIDs holds the hashes of issued chatter IDs (key GEEK#geek,
	// CHATTER#sha256hex).
	ChatterIDs string `json:"chatterIds"`
	// Reports holds the broker's report per message ID, for a day.
	Reports string `json:"reports"`
	// Stack is the stack the tables belong to: new tables are tagged
	// socks:stack=Stack ("" in tests that name tables by hand: no tag).
	Stack string `json:"-"`
}

// TablesFor returns the table names of stack: STACK-connections,
// STACK-chatter and STACK-reports.
func TablesFor(stack string) Tables {
	return Tables{
		Connections: stack + "-connections",
		ChatterIDs:  stack + "-chatter",
		Reports:     stack + "-reports",
		Stack:       stack,
	}
}

// Names lists the table names.
func (t Tables) Names() []string { return []string{t.Connections, t.ChatterIDs, t.Reports} }

// Validate checks that every name is set and is a valid table name.
func (t Tables) Validate() error {
	for _, n := range t.Names() {
		if len(n) < 3 || len(n) > 255 {
			return fmt.Errorf("table name %q must be 3 to 255 characters long: check --stack", n)
		}
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
				return fmt.Errorf("table name %q may only hold letters, digits, '_', '-' and '.': check --stack", n)
			}
		}
	}
	return nil
}

// CreateInputs describes the tables for CreateTable: on-demand billing, the
// key schemas and the by-geek index (all attributes projected, since fan-out
// and pruning read whole connection records from it).
func (t Tables) CreateInputs() []*dynamodb.CreateTableInput {
	str := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	key := func(hash, rangeKey string) []types.KeySchemaElement {
		k := []types.KeySchemaElement{{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash}}
		if rangeKey != "" {
			k = append(k, types.KeySchemaElement{AttributeName: aws.String(rangeKey), KeyType: types.KeyTypeRange})
		}
		return k
	}
	tags := func(role string) []types.Tag {
		tt := []types.Tag{
			{Key: aws.String(TagApp), Value: aws.String("socks")},
			{Key: aws.String("socks:role"), Value: aws.String(role)},
		}
		if t.Stack != "" {
			tt = append(tt, types.Tag{Key: aws.String(TagStack), Value: aws.String(t.Stack)})
		}
		return tt
	}
	return []*dynamodb.CreateTableInput{
		{
			TableName:            aws.String(t.Connections),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{str(attrPK), str(attrSK), str(attrGPK), str(attrGSK)},
			KeySchema:            key(attrPK, attrSK),
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName:  aws.String(ByGeekIndex),
				KeySchema:  key(attrGPK, attrGSK),
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
			}},
			Tags: tags("connections"),
		},
		{
			TableName:            aws.String(t.ChatterIDs),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{str(attrPK), str(attrSK)},
			KeySchema:            key(attrPK, attrSK),
			Tags:                 tags("chatter"),
		},
		{
			TableName:            aws.String(t.Reports),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{str(attrReportID)},
			KeySchema:            key(attrReportID, ""),
			Tags:                 tags("reports"),
		},
	}
}

// TTLInputs enables TTL on the expiresAt attribute of every table.
func (t Tables) TTLInputs() []*dynamodb.UpdateTimeToLiveInput {
	out := make([]*dynamodb.UpdateTimeToLiveInput, 0, 3)
	for _, n := range t.Names() {
		out = append(out, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(n),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{
				AttributeName: aws.String(attrTTL),
				Enabled:       aws.Bool(true),
			},
		})
	}
	return out
}

// TableAdminAPI is the part of the DynamoDB client that EnsureTables and
// DeleteTables call; *dynamodb.Client satisfies it.
type TableAdminAPI interface {
	CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DeleteTable(ctx context.Context, params *dynamodb.DeleteTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
	DescribeTimeToLive(ctx context.Context, params *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, params *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	ListTagsOfResource(ctx context.Context, params *dynamodb.ListTagsOfResourceInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ListTagsOfResourceOutput, error)
	TagResource(ctx context.Context, params *dynamodb.TagResourceInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TagResourceOutput, error)
}

var _ TableAdminAPI = (*dynamodb.Client)(nil)

// EnsureTables creates the tables that do not exist yet, waits up to wait
// for all of them to be active, and enables TTL where it is off. It is
// idempotent. It returns the names of the tables it created. A table it
// did not make (there already, or made meanwhile by another deploy or
// provision, or by hand) is read once active, as provision reads one
// (checkAppeared): one with another key or index stops it saying so,
// once the other tables have their TTL.
func EnsureTables(ctx context.Context, api TableAdminAPI, t Tables, wait time.Duration) ([]string, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	var created []string
	var found []*dynamodb.CreateTableInput
	for _, in := range t.CreateInputs() {
		made, err := createTable(ctx, api, in)
		if err != nil {
			return created, err
		}
		if made {
			created = append(created, aws.ToString(in.TableName))
		} else {
			found = append(found, in)
		}
	}
	waiter := dynamodb.NewTableExistsWaiter(api, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 200 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	for _, n := range t.Names() {
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(n)}, wait); err != nil {
			return created, fmt.Errorf("waiting for table %s to become active: %w", n, Explain(wrapTable("DescribeTable", n, err)))
		}
	}
	var stopped error
	other := map[string]bool{}
	for _, in := range found {
		if err := checkAppeared(ctx, api, in, "deploying", "deploy"); err != nil {
			other[aws.ToString(in.TableName)] = true
			stopped = errors.Join(stopped, err)
		}
	}
	for _, in := range t.TTLInputs() {
		if other[aws.ToString(in.TableName)] {
			continue
		}
		if err := ensureTTL(ctx, api, in); err != nil {
			return created, err
		}
	}
	return created, stopped
}

// createTable creates in's table and reports whether this call made it.
// DynamoDB's ResourceInUseException is not a failure: the table exists or
// is being created, made by this very call when the SDK retried a
// CreateTable whose answer was lost, or by another provision or deploy
// meanwhile. The caller waits for it to be active (EnsureTables,
// CreateMissing, which also checks that it is as wanted).
func createTable(ctx context.Context, api TableAdminAPI, in *dynamodb.CreateTableInput) (bool, error) {
	_, err := api.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		return false, nil
	case err != nil:
		return false, Explain(wrapTable("CreateTable", aws.ToString(in.TableName), err))
	}
	return true, nil
}

// ensureTTL turns time to live on as in says, unless it is on (or being
// turned on) on that attribute already: UpdateTimeToLive fails on a table
// whose TTL is on.
func ensureTTL(ctx context.Context, api TableAdminAPI, in *dynamodb.UpdateTimeToLiveInput) error {
	name := aws.ToString(in.TableName)
	d, err := api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: in.TableName})
	if err != nil {
		return Explain(wrapTable("DescribeTimeToLive", name, err))
	}
	if desc := d.TimeToLiveDescription; desc != nil &&
		(desc.TimeToLiveStatus == types.TimeToLiveStatusEnabled || desc.TimeToLiveStatus == types.TimeToLiveStatusEnabling) &&
		aws.ToString(desc.AttributeName) == aws.ToString(in.TimeToLiveSpecification.AttributeName) {
		return nil
	}
	if _, err := api.UpdateTimeToLive(ctx, in); err != nil {
		return Explain(wrapTable("UpdateTimeToLive", name, err))
	}
	return nil
}

// DeleteTables deletes the tables and waits up to wait for them to be
// gone, also for those already being deleted (a rerun). Tables that do not exist, and blank names (see OwnTables), are
// skipped.
func DeleteTables(ctx context.Context, api TableAdminAPI, t Tables, wait time.Duration) error {
	return DeleteTablesReporting(ctx, api, t, wait, nil)
}

// DeleteTablesReporting is DeleteTables, calling gone (when not nil) with
// each table's name once DynamoDB took its deletion (or found it gone), so
// that a teardown that stops can say what it deleted.
func DeleteTablesReporting(ctx context.Context, api TableAdminAPI, t Tables, wait time.Duration, gone func(name string)) error {
	if gone == nil {
		gone = func(string) {}
	}
	var deleted []string
	for _, n := range t.Names() {
		if n == "" {
			continue
		}
		_, err := api.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(n)})
		var missing *types.ResourceNotFoundException
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &missing):
			gone(n)
		case errors.As(err, &inUse):
			// A teardown rerun while AWS still deletes the table (or
			// one that is being created or updated): wait for it below
			// when it is going, say so otherwise.
			d, derr := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(n)})
			switch {
			case errors.As(derr, &missing):
				gone(n)
			case derr != nil:
				return Explain(wrapTable("DescribeTable", n, derr))
			case d.Table == nil || d.Table.TableStatus == types.TableStatusDeleting:
				deleted = append(deleted, n)
				gone(n)
			default:
				return fmt.Errorf("table %s is %s and cannot be deleted until it is active: run teardown again in a minute", n, strings.ToLower(string(d.Table.TableStatus)))
			}
		case err != nil:
			return Explain(wrapTable("DeleteTable", n, err))
		default:
			deleted = append(deleted, n)
			gone(n)
		}
	}
	waiter := dynamodb.NewTableNotExistsWaiter(api, func(o *dynamodb.TableNotExistsWaiterOptions) {
		o.MinDelay = 200 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	for _, n := range deleted {
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(n)}, wait); err != nil {
			return fmt.Errorf("waiting for table %s to be deleted: %w", n, Explain(wrapTable("DescribeTable", n, err)))
		}
	}
	return nil
}
