package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
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

// sigV4Auth is a request's Authorization header, parsed, with its
// signing time.
type sigV4Auth struct {
	fields   map[string]string
	scope    []string // access key, date, region, service, "aws4_request"
	signedAt time.Time
}

// parseSigV4 checks what a request's signature claims before its body is
// read: the AWS Signature Version 4 form of its Authorization header,
// creds's access key and a signing time within maxClockSkew of now. A
// call without them is refused unread (off loopback anyone may call).
// The error says what was wrong, in words, without echoing the header.
func parseSigV4(r *http.Request, creds Credentials, now time.Time) (*sigV4Auth, error) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, sigV4Algorithm+" ")
	if !ok {
		return nil, errors.New("the request is not signed with AWS Signature Version 4")
	}
	// Exactly Credential, SignedHeaders and Signature, once each: a
	// header with more, or one twice, is not one a signer wrote.
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		_, seen := fields[k]
		if !ok || seen || (k != "Credential" && k != "SignedHeaders" && k != "Signature") {
			return nil, errors.New("the Authorization header is malformed")
		}
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return nil, errors.New("the Authorization header is malformed")
	}
	if subtle.ConstantTimeCompare([]byte(scope[0]), []byte(creds.AccessKeyID)) != 1 {
		return nil, errors.New("the access key is not this gateway's; use the key pair `socks config` names")
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signedAt.Format("20060102") != scope[1] {
		return nil, errors.New("the request has no valid X-Amz-Date")
	}
	if d := now.Sub(signedAt); d > maxClockSkew || d < -maxClockSkew {
		return nil, errors.New("the request was signed more than 15 minutes from now; check the clock")
	}
	return &sigV4Auth{fields: fields, scope: scope, signedAt: signedAt}, nil
}

// verify checks that r (whose body is body) carries the signature a
// claims, by creds: it rebuilds the request from the headers a names,
// signs that again with the AWS SDK's own signer and compares the
// signatures in constant time.
//
// The SDK's signer signs Content-Length only when it is above 0, but the
// AWS SDK for JavaScript v3 signs "content-length:0" for an empty body
// (PostToConnection with empty Data). For that request alone the signer
// signs a stand-in length of 1 and the signature is recomputed over its
// canonical request with that one line reading 0: every other byte of
// what is signed is still the SDK signer's.
func (a *sigV4Auth) verify(r *http.Request, body []byte, creds Credentials) error {
	again, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return errors.New("the request URL is malformed")
	}
	again.Host = r.Host
	emptySigned := false
	for _, h := range strings.Split(a.fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
			if len(body) == 0 {
				again.ContentLength, emptySigned = 1, true
			}
		default:
			for _, v := range r.Header.Values(h) {
				again.Header.Add(h, v)
			}
		}
	}
	sum := sha256.Sum256(body)
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	var signed signingLog
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.Logger, o.LogSigning = &signed, emptySigned })
	if err := signer.SignHTTP(context.Background(), c, again, hex.EncodeToString(sum[:]), a.scope[3], a.scope[2], a.signedAt); err != nil {
		return errBadSignature
	}
	// The headers signed are the ones claimed, in the signer's words: a
	// claim the signature holds for only once rebuilt (a header name
	// misspelt, repeated or unknown, which the rebuild skips) is not the
	// header the caller signed.
	resigned := again.Header.Get("Authorization")
	_, want, _ := strings.Cut(resigned, "Signature=")
	if emptySigned {
		if want, err = signed.withZeroLength(creds.SecretAccessKey, a.scope); err != nil {
			return errBadSignature
		}
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.fields["Signature"])) != 1 ||
		!strings.Contains(resigned, "SignedHeaders="+a.fields["SignedHeaders"]+",") {
		return errBadSignature
	}
	return nil
}

// signingLog keeps the canonical request and string to sign the SDK's
// signer logs when asked to (SignerOptions.LogSigning).
type signingLog struct {
	canonical, stringToSign string
	logged                  bool
}

func (l *signingLog) Logf(_ logging.Classification, _ string, v ...interface{}) {
	if len(v) >= 2 {
		l.canonical, _ = v[0].(string)
		l.stringToSign, _ = v[1].(string)
		l.logged = true
	}
}

// withZeroLength returns the signature of the request the signer logged
// with a stand-in Content-Length of 1, had it been 0: its canonical
// request with the line "content-length:1" reading "content-length:0",
// hashed into its string to sign in place of the original's hash, signed
// with the key SigV4 derives from secret for scope (access key, date,
// region, service, "aws4_request").
func (l *signingLog) withZeroLength(secret string, scope []string) (string, error) {
	const line = "\ncontent-length:1\n"
	oldSum := sha256.Sum256([]byte(l.canonical))
	prefix, found := strings.CutSuffix(l.stringToSign, hex.EncodeToString(oldSum[:]))
	if !l.logged || strings.Count(l.canonical, line) != 1 || !found {
		return "", errors.New("the signer's log is not the canonical request it signed")
	}
	canonical := strings.Replace(l.canonical, line, "\ncontent-length:0\n", 1)
	sum := sha256.Sum256([]byte(canonical))
	key := []byte("AWS4" + secret)
	for _, part := range scope[1:] {
		key = hmacSHA256(key, part)
	}
	return hex.EncodeToString(hmacSHA256(key, prefix+hex.EncodeToString(sum[:]))), nil
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
