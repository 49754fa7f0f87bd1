package awsops

import (
	"testing"

	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/store/storetest"
)

func TestDynamoStoreConformance(t *testing.T) {
	emulatorEndpoints(t)
	storetest.RunStore(t, func(t *testing.T) store.Store { return newTestStore(t) })
}

func TestSQSQueueConformance(t *testing.T) {
	emulatorEndpoints(t)
	storetest.RunQueue(t, func(t *testing.T, o storetest.QueueOptions) store.Queue {
		return newTestQueue(t, o.MaxReceives)
	})
}
