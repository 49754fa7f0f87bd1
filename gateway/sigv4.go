package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Credentials are the key pair @connections calls must be signed with
// (AWS Signature Version 4) when Options.Credentials is set.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// maxClockSkew is how far a signed request's X-Amz-Date may be from now,
// as AWS allows.
const maxClockSkew = 15 * time.Minute

const sigV4Algorithm = "AWS4-HMAC-SHA256"

var errBadSignature = errors.New("the request signature does not match; sign it with the key pair `socks config` names")

// verifySigV4 checks that r (whose body is body) carries a valid AWS
// Signature Version 4 by creds: it parses the Authorization header, rebuilds
// the request from the headers it names, signs that again with the AWS
// SDK's own signer and compares the signatures in constant time. The error
// says what was wrong, in words, without echoing the header.
func verifySigV4(r *http.Request, body []byte, creds Credentials, now time.Time) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, sigV4Algorithm+" ")
	if !ok {
		return errors.New("the request is not signed with AWS Signature Version 4")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errors.New("the Authorization header is malformed")
		}
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return errors.New("the Authorization header is malformed")
	}
	if subtle.ConstantTimeCompare([]byte(scope[0]), []byte(creds.AccessKeyID)) != 1 {
		return errors.New("the access key is not this gateway's; use the key pair `socks config` names")
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signedAt.Format("20060102") != scope[1] {
		return errors.New("the request has no valid X-Amz-Date")
	}
	if d := now.Sub(signedAt); d > maxClockSkew || d < -maxClockSkew {
		return errors.New("the request was signed more than 15 minutes from now; check the clock")
	}
	again, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return errors.New("the request URL is malformed")
	}
	again.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			for _, v := range r.Header.Values(h) {
				again.Header.Add(h, v)
			}
		}
	}
	sum := sha256.Sum256(body)
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, again, hex.EncodeToString(sum[:]), scope[3], scope[2], signedAt); err != nil {
		return errBadSignature
	}
	_, want, _ := strings.Cut(again.Header.Get("Authorization"), "Signature=")
	if subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return errBadSignature
	}
	return nil
}
