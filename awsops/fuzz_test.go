package awsops

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	awsarn "github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
)

// fuzzAttr builds an attribute value of the DynamoDB type kind picks,
// from a and b: what a backend in another language may write where socks
// expects something else (docs/chatter.md), or nothing (kind 0).
func fuzzAttr(kind uint8, a, b string) types.AttributeValue {
	switch kind % 11 {
	case 1:
		return &types.AttributeValueMemberS{Value: a}
	case 2:
		return &types.AttributeValueMemberN{Value: a}
	case 3:
		return &types.AttributeValueMemberSS{Value: []string{a, b}}
	case 4:
		return &types.AttributeValueMemberL{Value: []types.AttributeValue{avS(a), avS(b)}}
	case 5:
		return &types.AttributeValueMemberL{Value: []types.AttributeValue{avS(a), &types.AttributeValueMemberN{Value: b}}}
	case 6:
		return &types.AttributeValueMemberL{}
	case 7:
		return &types.AttributeValueMemberNULL{Value: true}
	case 8:
		return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{a: avS(b)}}
	case 9:
		return &types.AttributeValueMemberB{Value: []byte(a)}
	case 10:
		return &types.AttributeValueMemberL{Value: []types.AttributeValue{avS(a)}}
	}
	return nil
}

// FuzzAChatterItemIsHonouredOnlyAsWritten reads back chatter ID items
// whose allowed topics and expiry have any DynamoDB type (a backend writes
// these items itself, docs/chatter.md): VerifyChatterID never panics, and
// accepts an ID only when its expiresAtMs is a number (a fraction too)
// past now and its
// allowed topics are absent or a list of topic patterns, which it keeps
// exactly: an allowed attribute it cannot read never becomes "any topic".
// One it accepts writes as JSON (`chatter list --json`), an expiry past
// year 9999 too.
//
// testdata/fuzz/FuzzAChatterItemIsHonouredOnlyAsWritten holds the items
// that were once accepted as "any topic" (allowed as a string set, a
// string, an empty list, NULL; a list holding a number kept only its
// strings) or with a pattern that is not one ("*").
func FuzzAChatterItemIsHonouredOnlyAsWritten(f *testing.F) {
	f.Add(uint8(0), "updates", "entity:*", uint8(2), "1767312000000")
	f.Add(uint8(4), "updates", "entity:*", uint8(2), "1767312000000")
	f.Add(uint8(0), "", "", uint8(1), "1767312000000")
	f.Add(uint8(0), "", "", uint8(2), "1.767312e12")
	f.Add(uint8(0), "", "", uint8(2), "99999999999999999999")
	// Past year 9999: `chatter list --json` failed on it.
	f.Add(uint8(0), "", "", uint8(2), "9999999999999999")
	now := time.UnixMilli(1767225600000).UTC()
	const geek, secret = "Friendless", "sc_fuzz"
	f.Fuzz(func(t *testing.T, allowedKind uint8, a, b string, expiryKind uint8, expiry string) {
		hash := pubsub.HashChatterID(secret)
		it := chatterKey(geek, hash)
		it[attrGeek], it[attrHash] = avS(geek), avS(hash)
		it[attrIssuedAt] = avN(now.UnixMilli())
		allowed := fuzzAttr(allowedKind, a, b)
		if allowed != nil {
			it[attrAllowed] = allowed
		}
		if v := fuzzAttr(expiryKind, expiry, expiry); v != nil {
			it[attrExpiresAtMs] = v
		}
		s, _ := newFakeStore(&fakeDynamo{getItem: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			return &dynamodb.GetItemOutput{Item: it}, nil
		}})
		c, err := s.VerifyChatterID(context.Background(), geek, secret, now)
		if err != nil {
			return
		}
		// A number past now: DynamoDB's numbers may have a fraction.
		n, ok := it[attrExpiresAtMs].(*types.AttributeValueMemberN)
		var ms *big.Rat
		if ok {
			ms, ok = new(big.Rat).SetString(n.Value)
		}
		if !ok || ms.Cmp(new(big.Rat).SetInt64(now.UnixMilli())) <= 0 {
			t.Fatalf("accepted with expiresAtMs %#v", it[attrExpiresAtMs])
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("expiresAtMs %#v: the ID does not write as JSON (chatter list --json): %v", it[attrExpiresAtMs], err)
		}
		if allowed == nil {
			if c.Topics != nil {
				t.Fatalf("no allowed attribute, but topics %q", c.Topics)
			}
			return
		}
		l, ok := allowed.(*types.AttributeValueMemberL)
		if !ok || len(l.Value) == 0 {
			t.Fatalf("accepted with allowed %#v, read as topics %q (nil: any topic)", allowed, c.Topics)
		}
		var want []string
		for _, v := range l.Value {
			s, ok := v.(*types.AttributeValueMemberS)
			if !ok {
				t.Fatalf("accepted with allowed %#v, read as topics %q", allowed, c.Topics)
			}
			want = append(want, s.Value)
		}
		if !slices.Equal(pubsub.Unique(want), c.Topics) || pubsub.ValidateTopicPatterns(c.Topics) != nil {
			t.Fatalf("allowed %q read as topics %q", want, c.Topics)
		}
	})
}

// FuzzConnectionItemsReadBack reads back connection items whose
// attributes have any DynamoDB type: itemConnection never panics, and a
// record it returns has its ID, only the strings it was given as its
// topics, and times JSON can write (`subs list --json`), however far
// past year 9999 or before year 0 its numbers were.
func FuzzConnectionItemsReadBack(f *testing.F) {
	f.Add(uint8(1), "c1", uint8(4), "news", "updates", uint8(2), "1767225600000")
	f.Add(uint8(2), "c1", uint8(3), "news", "updates", uint8(1), "x")
	f.Add(uint8(0), "", uint8(5), "news", "1", uint8(9), "")
	// Past year 9999: `subs list --json` failed on it.
	f.Add(uint8(1), "c1", uint8(4), "news", "updates", uint8(2), "9999999999999999")
	f.Add(uint8(1), "c1", uint8(4), "news", "updates", uint8(2), "-9999999999999999")
	f.Fuzz(func(t *testing.T, idKind uint8, id string, topicsKind uint8, a, b string, atKind uint8, at string) {
		it := item{}
		for name, v := range map[string]types.AttributeValue{
			attrID: fuzzAttr(idKind, id, id), attrTopics: fuzzAttr(topicsKind, a, b), attrAllowed: fuzzAttr(topicsKind, b, a),
			attrConnectedAt: fuzzAttr(atKind, at, at), attrExpiresAtMs: fuzzAttr(atKind+1, at, at), attrGeek: fuzzAttr(idKind+3, id, id),
		} {
			if v != nil {
				it[name] = v
			}
		}
		c, err := itemConnection(it)
		if err != nil {
			return
		}
		if s, ok := it[attrID].(*types.AttributeValueMemberS); !ok || s.Value != c.ID || c.ID == "" {
			t.Fatalf("item %#v read as connection %q", it[attrID], c.ID)
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("times %#v, %#v: the connection does not write as JSON (subs list --json): %v", it[attrConnectedAt], it[attrExpiresAtMs], err)
		}
		for _, tp := range c.Topics {
			if tp != a && tp != b {
				t.Fatalf("topics %#v read as %q", it[attrTopics], c.Topics)
			}
		}
	})
}

// FuzzQueuePolicyReadBack reads back any SQS queue policy (one someone
// else may have set, with statements socks must keep): a policy that is
// a JSON object whose Statement is a list of statements or one statement
// (IAM's grammar allows both) is read with every statement, and writes
// back to a policy that reads the same; anything else is refused in words,
// never with encoding/json's. A key that differs from Statement only by
// case is no Statement (testdata/fuzz/FuzzQueuePolicyReadBack/00b396df06a68718
// was read as one).
func FuzzQueuePolicyReadBack(f *testing.F) {
	for _, s := range []string{
		`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"arn"}]}`,
		`{"Version":"2012-10-17","Id":"p","Statement":[]}`,
		`{"Version":"2012-10-17"}`,
		`{"Statement":"x"}`,
		`[]`, `{`, ``, `null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := parseQueuePolicy(raw)
		if err != nil {
			for _, leak := range []string{"json:", "Go struct", "Go value", "RawMessage", "queuePolicy"} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("%q: refused with %q, encoding/json's words", raw, err)
				}
			}
			return
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &doc) != nil {
			t.Fatalf("%q is not a JSON object, but it was read", raw)
		}
		want := 0
		if st := bytes.TrimSpace(doc["Statement"]); len(st) > 0 && st[0] == '{' {
			want = 1
		} else if len(st) > 0 && st[0] == '[' {
			var l []json.RawMessage
			_ = json.Unmarshal(st, &l)
			want = len(l)
		}
		if len(p.Statement) != want {
			t.Fatalf("%q read with %d statements; it has %d", raw, len(p.Statement), want)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseQueuePolicy(string(b))
		if err != nil || len(again.Statement) != len(p.Statement) {
			t.Fatalf("%q wrote back %s, which reads as %d statements (%v)", raw, b, len(again.Statement), err)
		}
	})
}

// FuzzTrustDriftFlagsAnyoneButLambda reads back the function role's trust
// policy with one Allow statement for any principal and action, the
// statement given alone or in a list (IAM's grammar allows both): drift
// is reported exactly when someone besides lambda.amazonaws.com may
// assume the role or the statement allows more than sts:AssumeRole.
func FuzzTrustDriftFlagsAnyoneButLambda(f *testing.F) {
	f.Add(uint8(0), "lambda.amazonaws.com", "sts:AssumeRole", false)
	f.Add(uint8(0), "ec2.amazonaws.com", "sts:AssumeRole", false)
	f.Add(uint8(1), "arn:aws:iam::2:root", "sts:AssumeRole", false)
	f.Add(uint8(2), "", "sts:AssumeRole", false)
	f.Add(uint8(3), "lambda.amazonaws.com", "sts:AssumeRole", false)
	f.Add(uint8(0), "lambda.amazonaws.com", "sts:TagSession", false)
	f.Fuzz(func(t *testing.T, kind uint8, who, action string, alone bool) {
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		var principal string
		others := true
		switch kind % 5 {
		case 0:
			principal, others = `{"Service":`+q(who)+`}`, who != "lambda.amazonaws.com"
		case 1:
			principal = `{"AWS":` + q(who) + `}`
		case 2:
			principal = `"*"`
		case 3:
			principal, others = `{"Service":["lambda.amazonaws.com",`+q(who)+`]}`, who != "lambda.amazonaws.com"
		case 4:
			principal = `{"Federated":` + q(who) + `}`
		}
		st := `{"Effect":"Allow","Principal":` + principal + `,"Action":` + q(action) + `}`
		if !alone {
			st = "[" + st + "]"
		}
		doc := `{"Version":"2012-10-17","Statement":` + st + `}`
		drift := trustDrift(doc)
		if want := others || action != "sts:AssumeRole"; (len(drift) > 0) != want {
			t.Fatalf("%s: drift %q; want drift %v", doc, drift, want)
		}
	})
}

// FuzzParsePolicyReadsEveryStatement reads back any role policy document:
// ParsePolicy refuses it in words (never encoding/json's) or reads every
// statement, whether Statement is one statement or a list.
func FuzzParsePolicyReadsEveryStatement(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"sqs:*","Resource":["a","b"]}]}`)
	f.Add(`{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow","Action":["x"],"Resource":"a"}}`)
	f.Add(`%7B%22Statement%22%3A%5B%5D%7D`)
	f.Add(`{"Statement":[1]}`)
	f.Add(`{"Statement":[{"Sid":7}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := ParsePolicy(doc)
		if err != nil {
			for _, leak := range []string{"json:", "Go struct", "Go value", "RawMessage"} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("%q: refused with %q, encoding/json's words", doc, err)
				}
			}
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParsePolicy(string(b))
		if err != nil || len(again.Statement) != len(p.Statement) {
			t.Fatalf("%q wrote back %s, which reads as %d statements (%v)", doc, b, len(again.Statement), err)
		}
	})
}

// FuzzARedrivePolicyHasAQueueARNAndACountInRange reads any RedrivePolicy
// attribute of the main queue (what SQS or an emulator holds): one read
// has an SQS queue's ARN as target (whose name is the ARN's last part,
// which the drift check compares with the dead-letter queue's) and a
// count SQS allows (1 to 1000), both as the policy's exact keys hold
// them, and reads back the same written as SQS writes it (the count a
// number) and as provision does (a string); one refused says why on one
// printable line, in its own words, never encoding/json's or strconv's.
func FuzzARedrivePolicyHasAQueueARNAndACountInRange(f *testing.F) {
	const arn = "arn:aws:sqs:us-east-1:000000000000:prod-envelopes-dlq"
	for _, s := range []string{
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":7}`,
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":"7"}`,
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":"\u0037"}`,
		`{"maxReceiveCount":1,"deadLetterTargetArn":"arn:aws-cn:sqs:cn-north-1:1:q.fifo"}`,
		`{"maxReceiveCount":7}`, `{"deadLetterTargetArn":"` + arn + `"}`,
		`{"deadLetterTargetArn":"prod-envelopes-dlq","maxReceiveCount":7}`,
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:a:b","maxReceiveCount":7}`,
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":-1}`,
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":99999999999999999999}`,
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":7.5}`,
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":"+7"}`,
		`{"deadLetterTargetArn":"` + arn + `","maxReceiveCount":[ "\u202e" ]}`,
		`{"deadLetterTargetArn":"` + arn + `","MaxReceiveCount":7}`,
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:\u001b[2J","maxReceiveCount":7}`,
		`{"deadLetterTargetArn":7,"maxReceiveCount":7}`, `[]`, `{`, ``, `null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		target, count, err := parseRedrivePolicy(raw)
		if err != nil {
			msg := err.Error()
			if !utf8.ValidString(msg) {
				t.Fatalf("%q: refused with %q, not UTF-8", raw, msg)
			}
			for _, r := range msg {
				if !unicode.IsPrint(r) && r != ' ' {
					t.Fatalf("%q: refused with %q, which holds %U", raw, msg, r)
				}
			}
			for _, leak := range []string{"json:", "Go struct", "Go value", "RawMessage", "redrivePolicy", "strconv", "invalid syntax"} {
				if strings.Contains(msg, leak) {
					t.Fatalf("%q: refused with %q, a library's words", raw, msg)
				}
			}
			if target != "" || count != 0 {
				t.Fatalf("%q: refused (%v) but read as %q, %d", raw, err, target, count)
			}
			return
		}
		a, perr := awsarn.Parse(target)
		if perr != nil || a.Service != "sqs" || a.Resource == "" || arnName(target) != a.Resource {
			t.Fatalf("%q: read with target %q, no SQS queue's ARN naming its queue last", raw, target)
		}
		for _, r := range target {
			if r <= ' ' || r > '~' {
				t.Fatalf("%q: read with target %q, which holds %U, as no ARN does", raw, target, r)
			}
		}
		if count < 1 || count > 1000 {
			t.Fatalf("%q: read with maxReceiveCount %d, which SQS never holds", raw, count)
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &doc) != nil {
			t.Fatalf("%q is no JSON object, but it was read", raw)
		}
		var asWritten string
		if json.Unmarshal(doc["deadLetterTargetArn"], &asWritten) != nil || asWritten != target {
			t.Fatalf("%q: read with target %q, where its deadLetterTargetArn holds %s", raw, target, doc["deadLetterTargetArn"])
		}
		for _, c := range []any{count, strconv.Itoa(count)} {
			b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": target, "maxReceiveCount": c})
			if t2, c2, err := parseRedrivePolicy(string(b)); err != nil || t2 != target || c2 != count {
				t.Fatalf("%q: read as %q, %d, written %s, read back as %q, %d, %v", raw, target, count, b, t2, c2, err)
			}
		}
	})
}
