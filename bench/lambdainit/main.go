// Command lambdainit measures the socks binary's cold start as a Lambda
// bootstrap: from starting the process to its answer to the first event (a
// WebSocket ping, which needs no AWS call), against a fake Lambda Runtime
// API on loopback. Every AWS endpoint it is given is a refused loopback
// port, so nothing leaves the machine. It prints the median in
// milliseconds and the runs.
//
//	go run ./bench/lambdainit -bin bin/socks -n 5
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const pingEvent = `{"requestContext":{"routeKey":"ping","eventType":"MESSAGE","connectionId":"bench000000001=","domainName":"127.0.0.1","stage":"bench","apiId":"local","requestId":"r1","messageDirection":"IN"},"body":"{\"action\":\"ping\"}","isBase64Encoded":false}`

func main() {
	bin := flag.String("bin", "", "the socks binary")
	n := flag.Int("n", 5, "runs")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "lambdainit: give -bin")
		os.Exit(2)
	}
	var runs []float64
	for i := range *n {
		ms, err := once(*bin, i)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lambdainit:", err)
			os.Exit(1)
		}
		runs = append(runs, ms)
	}
	sorted := slices.Clone(runs)
	slices.Sort(sorted)
	var parts []string
	for _, r := range runs {
		parts = append(parts, strconv.FormatFloat(r, 'f', 1, 64))
	}
	fmt.Printf("%.1f ms (runs: %s)\n", sorted[len(sorted)/2], strings.Join(parts, ", "))
}

// once starts the binary as a bootstrap and times its answer to one event.
func once(bin string, i int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	answered := make(chan error, 1)
	var served atomic.Bool
	hold := make(chan struct{})
	defer close(hold)
	reqID := fmt.Sprintf("req-%d", i)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		if served.Swap(true) {
			<-hold // one event per run
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", reqID)
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:socks-bench")
		_, _ = io.WriteString(w, pingEvent)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		answered <- nil
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		answered <- fmt.Errorf("the function failed the event: %s", b)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		answered <- fmt.Errorf("the function failed to start: %s", b)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	refused := "http://127.0.0.1:1"
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(),
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"SOCKS_STACK=bench",
		"SOCKS_ENDPOINT_URL=" + refused,
		"SOCKS_DYNAMODB_ENDPOINT_URL=" + refused,
		"SOCKS_SQS_ENDPOINT_URL=" + refused,
		"SOCKS_CALLBACK_URL=" + refused,
		"HOME=" + os.TempDir(),
	}
	cmd.Stderr = io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	select {
	case err := <-answered:
		if err != nil {
			return 0, err
		}
		return float64(time.Since(start)) / float64(time.Millisecond), nil
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("no answer to the first event within 30 s")
	}
}
