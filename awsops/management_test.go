package awsops

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// A Management API endpoint on execute-api names its region, and requests
// to it must be signed for that region, whatever the configuration says
// (a broker of one stack pointed at an API in another region).
func TestManagementClientSignsForTheEndpointsRegion(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1"}
	for endpoint, want := range map[string]string{
		"https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod":      "eu-west-1",
		"https://abc123defg.execute-api.cn-north-1.amazonaws.com.cn/prod":  "cn-north-1",
		"https://ABC123DEFG.EXECUTE-API.AP-SOUTHEAST-2.AMAZONAWS.COM/prod": "ap-southeast-2",
		"https://ws.example.com/prod":                                      "us-east-1", // a custom domain names none
		"http://127.0.0.1:8765/local":                                      "us-east-1",
		"https://abc.execute-api.eu-west-1.amazonaws.com.evil.example/p":   "us-east-1",
	} {
		if got := NewManagementClient(cfg, endpoint, 1).Options().Region; got != want {
			t.Errorf("%s: signs for %q; want %q", endpoint, got, want)
		}
	}
}
