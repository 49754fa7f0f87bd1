package awsops

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// madeMeanwhile is a DynamoDB client whose CreateTable of one table finds
// it made just before, with another key, by someone else: the race
// between deploy's check of the tables and its create.
type madeMeanwhile struct {
	*dynamodb.Client
	name string
}

func (m madeMeanwhile) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if aws.ToString(in.TableName) == m.name {
		if _, err := m.Client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            in.TableName,
			BillingMode:          types.BillingModePayPerRequest,
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("other"), KeyType: types.KeyTypeHash}},
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("other"), AttributeType: types.ScalarAttributeTypeS}},
		}); err != nil {
			return nil, err
		}
	}
	return m.Client.CreateTable(ctx, in, optFns...)
}

// TestEnsureTablesRefusesATableMadeMeanwhileWithAnotherKey: EnsureTables
// took DynamoDB's ResourceInUseException as "the table is there, fine",
// so deploy went on over a chatter table that another process had made,
// between deploy's check and its create, with another key. It now reads
// such a table as provision does (checkAppeared) and stops saying so,
// after it finished the other tables (their TTL on).
func TestEnsureTablesRefusesATableMadeMeanwhileWithAnotherKey(t *testing.T) {
	db := testDynamoClient(t)
	tables := TablesFor(uniqueName("meanwhile"))
	deleteTablesAtCleanup(t, db, tables)
	_, err := EnsureTables(t.Context(), madeMeanwhile{db, tables.ChatterIDs}, tables, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "table "+tables.ChatterIDs+" appeared with other settings while deploying") ||
		!strings.Contains(err.Error(), "run `socks deploy` again") {
		t.Fatalf("EnsureTables over a table made meanwhile with another key: %v; want it refused, named", err)
	}
	for _, n := range []string{tables.Connections, tables.Reports} {
		out, err := db.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(n)})
		if err != nil || out.TimeToLiveDescription == nil || out.TimeToLiveDescription.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
			t.Errorf("TTL of %s: %+v, %v; want it on", n, out, err)
		}
	}
}
