package awsops

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/socks-dev/socks/internal/loopback"
)

// managementIdleTimeout is how long an idle kept-alive connection to the
// Management API is kept.
const managementIdleTimeout = 30 * time.Second

// DefaultPushConcurrency sizes the Management API client's connection pool
// when NewManagementClient is given no concurrency.
const DefaultPushConcurrency = 16

// NewManagementClient returns an API Gateway Management API client that posts
// to endpoint, which is the WebSocket API's https URL including the stage
// (https://ID.execute-api.REGION.amazonaws.com/STAGE), or the local gateway's
// ManagementEndpoint.
//
// The client keeps up to concurrency connections alive to the endpoint (the
// broker's fan-out width), and the SDK does not retry: the broker owns retry
// and backoff for throttling, and a 410 must reach it at once. Each attempt
// is bounded (see DefaultAttemptTimeout and WithAttemptTimeout), so a
// Management API that never answers fails the push instead of hanging it.
func NewManagementClient(cfg aws.Config, endpoint string, concurrency int, opts ...ClientOption) *apigatewaymanagementapi.Client {
	c := resolveClientOptions(opts)
	if concurrency <= 0 {
		concurrency = DefaultPushConcurrency
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = max(t.MaxIdleConns, concurrency)
		t.MaxIdleConnsPerHost = concurrency
		t.MaxConnsPerHost = concurrency
		// Idle connections are given back after a while, so that a
		// long-running broker returns to its baseline after a burst.
		t.IdleConnTimeout = managementIdleTimeout
		loopback.Transport(t)
	})
	var client apigatewaymanagementapi.HTTPClient = httpClient
	if c.check != nil {
		client = checkedClient{client, c.check}
	}
	return apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = client
		o.RetryMaxAttempts = 1
		o.APIOptions = append(slices.Clip(o.APIOptions), addAttemptTimeout(c.attemptTimeout, 0))
		if r := endpointRegion(endpoint); r != "" {
			o.Region = r
		}
	})
}

// checkedClient passes each answer to check (WithResponseCheck).
type checkedClient struct {
	apigatewaymanagementapi.HTTPClient
	check func(*http.Response) error
}

func (c checkedClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.HTTPClient.Do(r)
	if err != nil {
		return resp, err
	}
	if err := c.check(resp); err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// executeAPIHost matches an API Gateway API's default domain, which names
// the API and its region.
var executeAPIHost = regexp.MustCompile(`^([a-z0-9]+)\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// ExecuteAPIHost reports whether host is exactly the default domain of an
// API Gateway API, {apiId}.execute-api.{region}.amazonaws.com (or .com.cn),
// with no port, and returns its API ID and region.
func ExecuteAPIHost(host string) (apiID, region string, ok bool) {
	m := executeAPIHost.FindStringSubmatch(host)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// endpointRegion returns the region an execute-api endpoint is in, which
// its requests must be signed for, or "" for any other endpoint (a custom
// domain, the local gateway): those are signed for the configured region.
func endpointRegion(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	_, region, _ := ExecuteAPIHost(strings.ToLower(u.Hostname()))
	return region
}

// LocalConfig is the AWS configuration for talking to the local gateway:
// static dummy credentials and a fixed region. It reads no environment
// variable and no shared config file, so it can never reach a real AWS
// endpoint by accident; the endpoint is always given to NewManagementClient.
func LocalConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		AppID:       "socks",
	}
}
