package awsops

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Item attributes besides the keys (docs/tables.md).
const (
	attrID          = "id"
	attrGeek        = "geek"
	attrTopic       = "topic"
	attrTopics      = "topics"
	attrConnectedAt = "connectedAt" // unix milliseconds
	attrExpiresAtMs = "expiresAtMs" // unix milliseconds; absent: a connection never expires, a chatter ID is expired
	attrVersion     = "version"
	attrHash        = "hash"
	attrIssuedAt    = "issuedAt" // unix milliseconds
	attrReport      = "report"   // the store.Report as JSON
	attrAt          = "at"       // unix milliseconds
	attrAllowed     = "allowed"  // topic patterns of a chatter ID or its connection; absent: any
)

type item = map[string]types.AttributeValue

func avS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func avN(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func getS(it item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(it item, name string) (int64, bool) {
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// getCeilN is getN for a number a backend wrote, which may have a
// fraction (Python's time.time() * 1000) or an exponent: it is rounded
// up, so that an expiry in milliseconds (or seconds) read with it is live
// exactly when DynamoDB's own comparison with a whole millisecond (a
// filter, a condition) says so. Every expiry socks reads is read so.
func getCeilN(it item, name string) (int64, bool) {
	q, m, ok := getRoundN(it, name)
	if ok && m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return int64Of(q, ok)
}

// getFloorN is getCeilN rounded down: a time that is not an expiry (when
// a chatter ID was issued, a connection made) is read as the millisecond
// it falls in, as socks itself truncates the times it writes.
func getFloorN(it item, name string) (int64, bool) {
	q, m, ok := getRoundN(it, name)
	if ok && m.Sign() < 0 {
		q.Sub(q, big.NewInt(1))
	}
	return int64Of(q, ok)
}

// getRoundN reads the number attribute name as DynamoDB holds it, with a
// fraction or an exponent: its quotient by 1 rounded toward zero and
// the remainder, whose sign says which way the fraction goes.
func getRoundN(it item, name string) (q, m *big.Int, ok bool) {
	if n, ok := getN(it, name); ok {
		return big.NewInt(n), new(big.Int), true
	}
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return nil, nil, false
	}
	// DynamoDB's numbers have at most 38 digits and exponents within
	// ±130: anything longer is not one, and must not make SetString
	// build a huge power of ten.
	if len(v.Value) > 64 {
		return nil, nil, false
	}
	if _, e, ok := strings.Cut(strings.ToLower(v.Value), "e"); ok {
		if x, err := strconv.Atoi(e); err != nil || x < -130 || x > 130 {
			return nil, nil, false
		}
	}
	r, ok := new(big.Rat).SetString(v.Value)
	if !ok {
		return nil, nil, false
	}
	q, m = new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	return q, m, true
}

func int64Of(q *big.Int, ok bool) (int64, bool) {
	if !ok || !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

func getList(it item, name string) []string {
	v, ok := it[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(v.Value))
	for _, e := range v.Value {
		if s, ok := e.(*types.AttributeValueMemberS); ok {
			out = append(out, s.Value)
		}
	}
	return out
}

func avList(values []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(values))
	for i, v := range values {
		l[i] = avS(v)
	}
	return &types.AttributeValueMemberL{Value: l}
}

// firstJSONMilli and lastJSONMilli bound the times encoding/json writes
// (RFC 3339: years 0 to 9999).
var (
	firstJSONMilli = time.Date(0, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	lastJSONMilli  = time.Date(9999, time.December, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
)

func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis is the time of ms epoch milliseconds, one past year 9999
// (or before year 0) read as the last (first) millisecond JSON writes:
// an item or a message attribute another writer set (a backend in another
// language, a producer's message the redrive policy moved) may hold any
// number, and every --json output must write the time read from it.
func fromMillis(ms int64) time.Time {
	return time.UnixMilli(min(max(ms, firstJSONMilli), lastJSONMilli)).UTC()
}

func ttlSeconds(t time.Time) int64   { return (t.UnixMilli() + 999) / 1000 }
func nowSeconds(now time.Time) int64 { return now.Unix() }

// connKey is the key of a connection item.
func connKey(id string) item {
	return item{attrPK: avS(prefixConn + id), attrSK: avS(skConnection)}
}

// geekKey is the key of a connection's geek item: the copy of the record
// in its geek's partition, which fan-out to users reads with one strongly
// consistent Query per user.
func geekKey(geek, id string) item {
	return item{attrPK: avS(prefixGeek + geek), attrSK: avS(prefixConn + id)}
}

// geekItem is the geek item of c.
func geekItem(c pubsub.Connection, version int64) item {
	it := connAttrs(c, version)
	for k, v := range geekKey(c.Geek, c.ID) {
		it[k] = v
	}
	return it
}

// subKey is the key of a subscription item.
func subKey(topic, geek, id string) item {
	return item{attrPK: avS(prefixTopic + topic), attrSK: avS(subSortKey(geek, id))}
}

func subSortKey(geek, id string) string { return geekSortPrefix(geek) + prefixConn + id }

// geekSortPrefix is what every subscription sort key of geek starts with.
func geekSortPrefix(geek string) string { return prefixGeek + geek + "#" }

// connAttrs are the attributes connection and subscription items share: the
// whole connection record, so that one Query returns complete connections.
func connAttrs(c pubsub.Connection, version int64) item {
	it := item{
		attrID:          avS(c.ID),
		attrGeek:        avS(c.Geek),
		attrTopics:      avList(c.Topics),
		attrConnectedAt: avN(millis(c.ConnectedAt)),
		attrVersion:     avN(version),
	}
	if len(c.Allowed) > 0 {
		it[attrAllowed] = avList(c.Allowed)
	}
	if !c.ExpiresAt.IsZero() {
		it[attrExpiresAtMs] = avN(millis(c.ExpiresAt))
		it[attrTTL] = avN(ttlSeconds(c.ExpiresAt))
	}
	return it
}

// connItem is the connection item of c, with the by-geek index keys.
func connItem(c pubsub.Connection, version int64) item {
	it := connAttrs(c, version)
	for k, v := range connKey(c.ID) {
		it[k] = v
	}
	it[attrGPK] = avS(prefixGeek + c.Geek)
	it[attrGSK] = avS(prefixConn + c.ID)
	return it
}

// subItem is the subscription item of c to topic.
func subItem(c pubsub.Connection, topic string, version int64) item {
	it := connAttrs(c, version)
	for k, v := range subKey(topic, c.Geek, c.ID) {
		it[k] = v
	}
	it[attrTopic] = avS(topic)
	return it
}

// itemConnection reads a connection or subscription item.
func itemConnection(it item) (pubsub.Connection, error) {
	c := pubsub.Connection{
		ID:      getS(it, attrID),
		Geek:    getS(it, attrGeek),
		Topics:  getList(it, attrTopics),
		Allowed: getList(it, attrAllowed),
	}
	if len(c.Allowed) == 0 {
		c.Allowed = nil
	}
	if c.ID == "" {
		return pubsub.Connection{}, fmt.Errorf("item %s/%s has no connection ID", getS(it, attrPK), getS(it, attrSK))
	}
	if ms, ok := getFloorN(it, attrConnectedAt); ok {
		c.ConnectedAt = fromMillis(ms)
	}
	if ms, ok := getCeilN(it, attrExpiresAtMs); ok {
		c.ExpiresAt = fromMillis(ms)
	}
	return c, nil
}

func itemVersion(it item) int64 {
	v, _ := getN(it, attrVersion)
	return v
}

// chatterKey is the key of a chatter ID item.
func chatterKey(geek, hash string) item {
	return item{attrPK: avS(prefixGeek + geek), attrSK: avS(prefixChatter + hash)}
}

func chatterItem(c store.ChatterID) item {
	it := chatterKey(c.Geek, c.Hash)
	it[attrGeek] = avS(c.Geek)
	it[attrHash] = avS(c.Hash)
	it[attrIssuedAt] = avN(millis(c.IssuedAt))
	it[attrExpiresAtMs] = avN(millis(c.ExpiresAt))
	if !c.ExpiresAt.IsZero() {
		it[attrTTL] = avN(ttlSeconds(c.ExpiresAt))
	}
	if len(c.Topics) > 0 {
		it[attrAllowed] = avList(c.Topics)
	}
	return it
}

// itemChatterID reads a chatter ID item. Backends in other languages
// write these items (docs/chatter.md), so an allowed attribute that is not
// a non-empty list of topic patterns (an L of S) is an error: read as
// "any topic" it would widen the ID. The ID returned then holds the
// strings that could be read, for listing and pruning; it must not be
// honoured.
//
// The key says whose ID it is and its hash: an item whose geek or hash
// attribute is missing or differs from its key is read with the key's,
// for listing and revoking, and is an error too.
func itemChatterID(it item) (store.ChatterID, error) {
	c := store.ChatterID{Geek: getS(it, attrGeek), Hash: getS(it, attrHash)}
	if ms, ok := getFloorN(it, attrIssuedAt); ok {
		c.IssuedAt = fromMillis(ms)
	}
	if ms, ok := getCeilN(it, attrExpiresAtMs); ok {
		c.ExpiresAt = fromMillis(ms)
	}
	var keyErr error
	if geek, hash, ok := chatterFromKey(it); ok {
		keyErr = keyMismatch(c, geek, hash)
		c.Geek, c.Hash = geek, hash
	}
	c, err := itemAllowed(it, c)
	if keyErr != nil {
		return c, keyErr
	}
	return c, err
}

// chatterFromKey is a chatter ID item's geek and hash as its key holds
// them, and whether the key is a chatter ID's.
func chatterFromKey(it item) (geek, hash string, ok bool) {
	geek, okG := strings.CutPrefix(getS(it, attrPK), prefixGeek)
	hash, okH := strings.CutPrefix(getS(it, attrSK), prefixChatter)
	return geek, hash, okG && okH
}

// keyMismatch says how c's geek and hash, as its attributes hold them,
// differ from geek and hash, as its key holds them; nil if they do not.
func keyMismatch(c store.ChatterID, geek, hash string) error {
	for _, a := range []struct{ name, got, key, where string }{
		{attrHash, c.Hash, hash, "sk after " + prefixChatter},
		{attrGeek, c.Geek, geek, "pk after " + prefixGeek},
	} {
		switch {
		case a.got == "":
			return fmt.Errorf("its %s attribute is missing or not a string (write it as a string, the same as its %s)", a.name, a.where)
		case a.got != a.key:
			return fmt.Errorf("its %s attribute differs from its key (write it the same as its %s)", a.name, a.where)
		}
	}
	return nil
}

// itemAllowed reads the allowed topics of chatter ID item it into c.
func itemAllowed(it item, c store.ChatterID) (store.ChatterID, error) {
	v, ok := it[attrAllowed]
	if !ok {
		return c, nil
	}
	l, ok := v.(*types.AttributeValueMemberL)
	if !ok || len(l.Value) == 0 {
		if ss, ok := v.(*types.AttributeValueMemberSS); ok {
			c.Topics = ss.Value
		}
		return c, errUnreadableAllowed
	}
	for _, e := range l.Value {
		s, ok := e.(*types.AttributeValueMemberS)
		if !ok {
			return c, errUnreadableAllowed
		}
		c.Topics = append(c.Topics, s.Value)
	}
	c.Topics = pubsub.Unique(c.Topics)
	if err := pubsub.ValidateTopicPatterns(c.Topics); err != nil {
		return c, fmt.Errorf("its allowed topics are not topic patterns: %w", err)
	}
	return c, nil
}

// errUnreadableAllowed is the error of a chatter ID item whose allowed
// attribute is not a non-empty list of strings.
var errUnreadableAllowed = errors.New(`its allowed topics are not a list of strings (write allowed as a non-empty L of S, like ["updates", "entity:*"], or leave it out for any topic)`)

// normalizeTopics returns topics sorted, without duplicates (the form
// connection records keep, as the local backend does).
func normalizeTopics(topics []string) []string {
	out := slices.Clone(topics)
	slices.Sort(out)
	return slices.Compact(out)
}
