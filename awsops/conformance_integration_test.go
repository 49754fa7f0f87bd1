package awsops

import (
	"testing"

	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/store/storetest"
)

// TestDynamoStoreConformance runs beside the package's other parallel
// tests (fresh tables per subtest): its 1,300-record populations keep
// DynamoDB Local busy while the deploy tests wait on moto.
func TestDynamoStoreConformance(t *testing.T) {
	t.Parallel()
	emulatorEndpoints(t)
	storetest.RunStore(t, func(t *testing.T) store.Store { return newTestStore(t) })
}

func TestDynamoLimitsHoldAcrossClients(t *testing.T) {
	emulatorEndpoints(t)
	storetest.RunLimits(t, func(t *testing.T) storetest.Clients {
		first := newTestStore(t)
		return func() store.Store {
			// A separate SDK client per store, as concurrent Lambda
			// invocations hold.
			return NewDynamoStore(testDynamoClient(t), first.Tables())
		}
	})
}

func TestSQSQueueConformance(t *testing.T) {
	emulatorEndpoints(t)
	storetest.RunQueue(t, func(t *testing.T, o storetest.QueueOptions) store.Queue {
		return newTestQueue(t, o.MaxReceives)
	})
}
