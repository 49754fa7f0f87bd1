package awsops

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
)

// ImportConnections writes connection records, their geek items and their
// subscription items
// in batches of 25, without the version check PutConnection makes: for
// seeding a table (benchmarks, migrations) where nothing else writes these
// records at the same time. A record that exists is replaced.
func (s *DynamoStore) ImportConnections(ctx context.Context, conns []pubsub.Connection) error {
	var reqs []types.WriteRequest
	for _, c := range conns {
		if c.ID == "" {
			return &pubsub.InvalidError{Field: "connection ID", Reason: "is empty"}
		}
		if err := pubsub.ValidateGeek(c.Geek); err != nil {
			return err
		}
		c.Topics = normalizeTopics(c.Topics)
		reqs = append(reqs,
			types.WriteRequest{PutRequest: &types.PutRequest{Item: connItem(c, 1)}},
			types.WriteRequest{PutRequest: &types.PutRequest{Item: geekItem(c, 1)}})
		for _, t := range c.Topics {
			if err := pubsub.ValidateTopic(t); err != nil {
				return err
			}
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: subItem(c, t, 1)}})
		}
	}
	if err := s.batchWrite(ctx, s.tables.Connections, reqs); err != nil {
		return fmt.Errorf("importing %d connection records: %w", len(conns), err)
	}
	return nil
}
