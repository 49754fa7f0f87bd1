package awsops

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/routes"
	"github.com/socks-dev/socks/store"
)

// docs/chatter.md tells backends that write chatter items themselves to
// always write expiresAtMs. An item a backend wrote without it (or with
// only the TTL attribute) must not make an ID that never expires: $connect
// refuses it, and records nothing.
func TestAChatterItemWithoutExpiresAtMsIsRefused(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	secret := pubsub.NewChatterID()
	it := chatterItem(store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(secret), IssuedAt: now.Add(-time.Minute)})
	delete(it, attrExpiresAtMs)
	it[attrTTL] = avN(now.Add(time.Hour).Unix())
	if _, err := s.api.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(s.tables.ChatterIDs), Item: it}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyChatterID(t.Context(), "alice", secret, now); !errors.Is(err, store.ErrExpired) {
		t.Errorf("VerifyChatterID = %v; want ErrExpired", err)
	}
	h := &routes.Handler{Store: s, Now: func() time.Time { return now }}
	resp, err := h.Handle(t.Context(), events.APIGatewayWebsocketProxyRequest{
		QueryStringParameters: map[string]string{"geek": "alice", "id": secret},
		RequestContext:        events.APIGatewayWebsocketProxyRequestContext{RouteKey: routes.RouteConnect, EventType: "CONNECT", ConnectionID: "c-no-expiry"},
	})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("$connect answered %d %q, %v; want 403", resp.StatusCode, resp.Body, err)
	}
	if c, err := s.GetConnection(t.Context(), "c-no-expiry"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused connect recorded %+v, %v", c, err)
	}
}

// TestAChatterItemWithoutANumericExpiryIsPruned: an item that $connect
// refuses as expired for lacking a numeric expiresAtMs (left out, or
// written as a string) is counted expired by a dry-run prune, and the
// prune itself deletes it; it skipped such items, so the dry run promised
// deletions the run never made and they stayed, with no TTL, for ever.
func TestAChatterItemWithoutANumericExpiryIsPruned(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	for i, exp := range []types.AttributeValue{nil, avS(fmt.Sprint(now.Add(time.Hour).UnixMilli()))} {
		it := chatterItem(store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: now.Add(-time.Minute)})
		delete(it, attrExpiresAtMs)
		if exp != nil {
			it[attrExpiresAtMs] = exp
		}
		if _, err := s.api.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(s.tables.ChatterIDs), Item: it}); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if err := s.PutChatterID(t.Context(), store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.ListChatterIDs(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, c := range ids {
		if c.Expired(now) {
			expired++
		}
	}
	if expired != 2 {
		t.Fatalf("%d of the %d items read as expired; want the 2 without a numeric expiresAtMs", expired, len(ids))
	}
	if n, err := s.DeleteExpiredChatterIDs(t.Context(), now); err != nil || n != 2 {
		t.Errorf("DeleteExpiredChatterIDs = %d, %v; want the 2 items that read as expired", n, err)
	}
	if ids, err := s.ListChatterIDs(t.Context(), "alice"); err != nil || len(ids) != 1 || ids[0].Expired(now) {
		t.Errorf("after the prune ListChatterIDs = %+v, %v; want the one live ID", ids, err)
	}
}

// TestAChatterItemWhoseAllowedCannotBeReadIsRefusedAndSaysWhy writes,
// with the SDK as a backend in another language would, chatter items
// whose allowed attribute is not a non-empty list of strings (a string
// set, as boto3 writes a Python set; a string; NULL; an empty list; a
// list holding a number). $connect refuses each with the same 403 as an
// unknown ID, giving the client nothing more, and logs for the operator
// which ID it was and why, never the secret; listing shows each as
// refused with the reason, and revoking and pruning delete them.
func TestAChatterItemWhoseAllowedCannotBeReadIsRefusedAndSaysWhy(t *testing.T) {
	s := newTestStore(t)
	now := time.Now()
	var logs bytes.Buffer
	h := &routes.Handler{Store: s, Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	connect := func(id, secret string) events.APIGatewayProxyResponse {
		t.Helper()
		resp, err := h.Handle(t.Context(), events.APIGatewayWebsocketProxyRequest{
			QueryStringParameters: map[string]string{"geek": "alice", "id": secret, "topic": "updates"},
			RequestContext:        events.APIGatewayWebsocketProxyRequestContext{RouteKey: routes.RouteConnect, EventType: "CONNECT", ConnectionID: id},
		})
		if err != nil {
			t.Fatalf("$connect %s: %v", id, err)
		}
		return resp
	}
	unknown := connect("c-unknown", pubsub.NewChatterID())
	if unknown.StatusCode != http.StatusForbidden {
		t.Fatalf("an unknown ID: %d %q; want 403", unknown.StatusCode, unknown.Body)
	}

	bad := map[string]types.AttributeValue{
		"a string set":         &types.AttributeValueMemberSS{Value: []string{"updates"}},
		"a string":             avS("updates"),
		"NULL":                 &types.AttributeValueMemberNULL{Value: true},
		"an empty list":        &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		"a list with a number": &types.AttributeValueMemberL{Value: []types.AttributeValue{avS("updates"), &types.AttributeValueMemberN{Value: "1"}}},
	}
	fingerprints := map[string]string{}
	for name, allowed := range bad {
		t.Run(name, func(t *testing.T) {
			secret := pubsub.NewChatterID()
			c := store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(secret), IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
			fingerprints[c.Fingerprint()] = name
			putRawChatter(t, s, c, map[string]types.AttributeValue{attrAllowed: allowed})
			logs.Reset()
			resp := connect("c-"+c.Fingerprint(), secret)
			if resp.StatusCode != http.StatusForbidden || resp.Body != unknown.Body {
				t.Errorf("$connect answered %d %q; want 403 and the unknown ID's %q, nothing more", resp.StatusCode, resp.Body, unknown.Body)
			}
			if got, err := s.GetConnection(t.Context(), "c-"+c.Fingerprint()); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused connect recorded %+v, %v", got, err)
			}
			line := logs.String()
			if !strings.Contains(line, "its allowed topics are not a list of strings") || !strings.Contains(line, c.Fingerprint()) || !strings.Contains(line, "geek=alice") {
				t.Errorf("the log does not say which ID was refused and why: %q", line)
			}
			if strings.Contains(line, secret) {
				t.Errorf("the log holds the secret: %q", line)
			}
		})
	}
	good := store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(pubsub.NewChatterID()), IssuedAt: now, ExpiresAt: now.Add(time.Hour), Topics: []string{"updates"}}
	if err := s.PutChatterID(t.Context(), good); err != nil {
		t.Fatal(err)
	}

	for _, geek := range []string{"alice", ""} {
		ids, err := s.ListChatterIDs(t.Context(), geek)
		if err != nil || len(ids) != len(bad)+1 {
			t.Fatalf("ListChatterIDs(%q) = %d IDs, %v; want %d", geek, len(ids), err, len(bad)+1)
		}
		for _, c := range ids {
			name, isBad := fingerprints[c.Fingerprint()]
			switch {
			case isBad && !strings.Contains(c.Refused, "its allowed topics are not a list of strings"):
				t.Errorf("ListChatterIDs(%q): the item with allowed as %s is listed with Refused %q; want the reason", geek, name, c.Refused)
			case !isBad && c.Refused != "":
				t.Errorf("ListChatterIDs(%q): the ID socks issued is listed as refused: %q", geek, c.Refused)
			}
		}
	}
	if n, err := s.CountLiveChatterIDs(t.Context(), "alice", now); err != nil || n != len(bad)+1 {
		t.Errorf("CountLiveChatterIDs = %d, %v; want %d: a refused ID holds its place until revoked or expired", n, err, len(bad)+1)
	}
	// Revoked by the fingerprint `chatter list` shows.
	for fp, name := range fingerprints {
		if n, err := s.RevokeChatterIDs(t.Context(), "alice", []string{fp}); err != nil || n != 1 {
			t.Errorf("revoking the item with allowed as %s: %d, %v; want 1", name, n, err)
		}
		break
	}
	if n, err := s.DeleteExpiredChatterIDs(t.Context(), now); err != nil || n != 0 {
		t.Errorf("a prune before their expiry deleted %d, %v; want none", n, err)
	}
	if n, err := s.DeleteExpiredChatterIDs(t.Context(), now.Add(2*time.Hour)); err != nil || n != len(bad) {
		t.Errorf("a prune after their expiry deleted %d, %v; want %d", n, err, len(bad))
	}
	if ids, err := s.ListChatterIDs(t.Context(), ""); err != nil || len(ids) != 0 {
		t.Errorf("after the revoke and the prune ListChatterIDs = %+v, %v; want none", ids, err)
	}
}

// TestAChatterItemWithoutItsGeekOrHashIsRefusedListedAndRevocable: a
// backend that left out the geek or hash attribute (its key holds both)
// wrote an ID that $connect refused as unknown with no word to anyone;
// chatter list showed it without a fingerprint (or a geek), and revoking
// it deleted the key of an empty hash and said "revoked 1" while the item
// stayed. Its key says what it is: the listing shows its fingerprint and
// why it is refused, the gateway logs that, and a revoke deletes it.
func TestAChatterItemWithoutItsGeekOrHashIsRefusedListedAndRevocable(t *testing.T) {
	for _, missing := range []string{attrHash, attrGeek} {
		t.Run("without "+missing, func(t *testing.T) {
			s := newTestStore(t)
			now := time.Now()
			var logs bytes.Buffer
			h := &routes.Handler{Store: s, Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			secret := pubsub.NewChatterID()
			c := store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(secret), IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
			putRawChatter(t, s, c, map[string]types.AttributeValue{missing: nil})
			resp, err := h.Handle(t.Context(), events.APIGatewayWebsocketProxyRequest{
				QueryStringParameters: map[string]string{"geek": "alice", "id": secret},
				RequestContext:        events.APIGatewayWebsocketProxyRequestContext{RouteKey: routes.RouteConnect, EventType: "CONNECT", ConnectionID: "c1"},
			})
			if err != nil || resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Body, "chatter ID refused: unknown") {
				t.Errorf("$connect answered %d %q, %v; want the unknown ID's 403", resp.StatusCode, resp.Body, err)
			}
			if line := logs.String(); !strings.Contains(line, c.Fingerprint()) || !strings.Contains(line, "its "+missing+" attribute") {
				t.Errorf("the log does not say which ID was refused and why: %q", line)
			}
			ids, err := s.ListChatterIDs(t.Context(), "alice")
			if err != nil || len(ids) != 1 || ids[0].Fingerprint() != c.Fingerprint() || ids[0].Geek != "alice" || !strings.Contains(ids[0].Refused, "its "+missing+" attribute") {
				t.Fatalf("ListChatterIDs = %+v, %v; want the ID, its fingerprint and geek, refused for want of its %s", ids, err, missing)
			}
			if n, err := s.RevokeChatterIDs(t.Context(), "alice", []string{c.Fingerprint()}); err != nil || n != 1 {
				t.Errorf("RevokeChatterIDs = %d, %v; want 1", n, err)
			}
			if ids, err := s.ListChatterIDs(t.Context(), ""); err != nil || len(ids) != 0 {
				t.Errorf("after the revoke ListChatterIDs = %+v, %v; want none", ids, err)
			}
		})
	}
}

// TestAFractionalExpiryIsReadAsDynamoDBComparesIt: a backend may write
// expiresAtMs with a fraction (Python's time.time() * 1000, as a string)
// or an exponent; DynamoDB takes either as the number it is. $connect
// read neither and refused a fresh ID as expired, while the count of
// live IDs counted it and prune-stale's filter kept it, though its dry
// run had called it expired. Read as the number it is, rounded up to the
// millisecond, every reading agrees, at the edges too.
func TestAFractionalExpiryIsReadAsDynamoDBComparesIt(t *testing.T) {
	s := newTestStore(t)
	base := time.UnixMilli(4_000_000_000_000).UTC()
	secrets := map[string]string{}
	for _, exp := range []string{
		"4000000000000.5",
		strconv.FormatFloat(4_000_000_003_000, 'e', -1, 64), // 4.000000003e+12
		"4000000000002.000001",
	} {
		secret := pubsub.NewChatterID()
		secrets[exp] = secret
		putRawChatter(t, s, store.ChatterID{Geek: "alice", Hash: pubsub.HashChatterID(secret), IssuedAt: base.Add(-time.Hour), ExpiresAt: base}, map[string]types.AttributeValue{attrExpiresAtMs: &types.AttributeValueMemberN{Value: exp}})
	}
	// When each is live, as DynamoDB compares: up to its value, exclusive.
	liveUntil := map[string]time.Time{
		"4000000000000.5":      base.Add(500 * time.Microsecond),
		"4.000000003e+12":      base.Add(3 * time.Second),
		"4000000000002.000001": base.Add(2*time.Millisecond + time.Nanosecond),
	}
	for _, at := range []time.Time{base.Add(-time.Hour), base, base.Add(200 * time.Microsecond), base.Add(time.Millisecond), base.Add(2 * time.Millisecond), base.Add(2*time.Millisecond + 500*time.Microsecond), base.Add(3 * time.Millisecond), base.Add(3 * time.Second), base.Add(time.Hour)} {
		want := 0
		for exp, secret := range secrets {
			// DynamoDB's filters compare with whole milliseconds (the
			// now of the count and the prune): live while the
			// millisecond of at is before the value.
			live := at.Truncate(time.Millisecond).Before(liveUntil[exp])
			if live {
				want++
			}
			_, err := s.VerifyChatterID(t.Context(), "alice", secret, at)
			if live && err != nil || !live && !errors.Is(err, store.ErrExpired) {
				t.Errorf("at base%+v, VerifyChatterID of the ID expiring at %s: %v; want live %v", at.Sub(base), exp, err, live)
			}
		}
		if n, err := s.CountLiveChatterIDs(t.Context(), "alice", at); err != nil || n != want {
			t.Errorf("at base%+v, CountLiveChatterIDs = %d, %v; want %d", at.Sub(base), n, err, want)
		}
		ids, err := s.ListChatterIDs(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		listed := 0
		for _, c := range ids {
			if !c.Expired(at) {
				listed++
			}
		}
		if listed != want {
			t.Errorf("at base%+v, ListChatterIDs has %d live; want %d", at.Sub(base), listed, want)
		}
	}
	if n, err := s.DeleteExpiredChatterIDs(t.Context(), base.Add(2*time.Millisecond)); err != nil || n != 1 {
		t.Errorf("a prune at base+2ms deleted %d, %v; want the one expired at base+0.5ms", n, err)
	}
	if n, err := s.DeleteExpiredChatterIDs(t.Context(), base.Add(3*time.Second)); err != nil || n != 2 {
		t.Errorf("a prune at base+3s deleted %d, %v; want the other two", n, err)
	}
}
