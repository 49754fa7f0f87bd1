package broker_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/gateway"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// BenchmarkFanOut measures one envelope fanned out to 100 live WebSocket
// connections on the local gateway, through the real Management API over
// HTTP, with 32 posts in flight. The variants differ only in the HTTP client
// behind the SDK: keep-alive sized to the fan-out (what socks uses), the
// SDK's default pool, and no keep-alive at all. scripts/bench prints their
// ratios.
func BenchmarkFanOut(b *testing.B) {
	const conns, concurrency = 100, 32
	ctx := context.Background()
	db, err := local.Open(ctx, filepath.Join(b.TempDir(), "socks.db"), local.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	gw, addr, stop := serveGateway(b, &routes.Handler{Store: db.Store()})
	defer stop()
	wsBase := "ws://" + addr + "/"
	for i := range conns {
		geek := fmt.Sprintf("geek%03d", i)
		secret, _, err := store.IssueChatterID(ctx, db.Store(), geek, time.Hour, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		c, _, err := websocket.DefaultDialer.Dial(wsBase+"?geek="+geek+"&id="+secret+"&topic=bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	mgmt := gw.ManagementEndpoint(addr)
	env := pubsub.Envelope{Topics: []string{"bench"}, Body: []byte(`{"event":"bench","payload":"0123456789abcdef0123456789abcdef"}`)}

	variants := []struct {
		name   string
		client func() *apigatewaymanagementapi.Client
	}{
		{"keepalive-sized", func() *apigatewaymanagementapi.Client {
			return awsops.NewManagementClient(awsops.LocalConfig(), mgmt, concurrency)
		}},
		{"sdk-default-pool", func() *apigatewaymanagementapi.Client {
			return apigatewaymanagementapi.NewFromConfig(awsops.LocalConfig(), func(o *apigatewaymanagementapi.Options) {
				o.BaseEndpoint = aws.String(mgmt)
				o.RetryMaxAttempts = 1
			})
		}},
		{"no-keepalive", func() *apigatewaymanagementapi.Client {
			return apigatewaymanagementapi.NewFromConfig(awsops.LocalConfig(), func(o *apigatewaymanagementapi.Options) {
				o.BaseEndpoint = aws.String(mgmt)
				o.RetryMaxAttempts = 1
				o.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			})
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			br := &broker.Broker{Store: db.Store(), Pusher: awsops.NewPusher(v.client()), Concurrency: concurrency}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rep, err := br.Deliver(ctx, env)
				if err != nil || rep.Delivered != conns {
					b.Fatalf("delivered %d of %d: %v %v", rep.Delivered, conns, err, rep.Errors)
				}
			}
			b.ReportMetric(float64(conns), "posts/op")
		})
	}
}

// serveGateway serves a local gateway with the action routes and handler h
// on a loopback port; stop shuts it down (defer it before the store the
// handler uses is closed, so that the $disconnects find it open).
func serveGateway(tb testing.TB, h gateway.Handler) (gw *gateway.Gateway, addr string, stop func()) {
	tb.Helper()
	gw, err := gateway.New(gateway.Options{Handler: h, Routes: routes.ActionRoutes})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = gw.Serve(ln) }()
	return gw, ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	}
}
