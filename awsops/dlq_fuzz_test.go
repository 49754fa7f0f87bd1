package awsops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socks-dev/socks/store"
)

// deadMsg is a message as the dead-letter queue hands it out: sent to it
// at sentMs, with attrs.
func deadMsg(body []byte, sentMs int64, attrs map[string]sqstypes.MessageAttributeValue) sqstypes.Message {
	return sqstypes.Message{
		MessageId:     aws.String("dead-1"),
		ReceiptHandle: aws.String("receipt-1"),
		Body:          aws.String(string(body)),
		Attributes: map[string]string{
			string(sqstypes.MessageSystemAttributeNameSentTimestamp):           strconv.FormatInt(sentMs, 10),
			string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount): "1",
		},
		MessageAttributes: attrs,
	}
}

// attrWords are attrs as a failure names them.
func attrWords(attrs map[string]sqstypes.MessageAttributeValue) string {
	var b strings.Builder
	for name, v := range attrs {
		fmt.Fprintf(&b, " %s=%q", name, aws.ToString(v.StringValue))
	}
	return b.String()
}

// jsonWritable reports whether encoding/json writes t (a year from 0 to
// 9999), as `dlq list --json` and `dlq show --json` must.
func jsonWritable(t time.Time) bool {
	_, err := json.Marshal(t)
	return err == nil
}

// FuzzADeadLetterReadsAsSQSHoldsIt reads dead letters as the dead-letter
// queue hands them out (toDeadLetter). One socks sent there (DeadLetter,
// with deadAttrs) reads back as written: its original ID, body, reason,
// receive count and first send time. Any other is read whatever its
// message attributes hold: a producer's message that the main queue's
// redrive policy moved keeps the attributes its producer gave it, socks's
// own names among them. It reads as a dead letter `dlq list --json` can
// write (every time a year JSON holds, 0 to 9999: a socks-sent-at past
// year 9999 is read as its last millisecond, as fromMillis reads any),
// with a reason no longer than any queue keeps one
// (store.DeadLetterReason) and a receive count that is not negative.
//
// Its seeds hold the dead letters that were once read with a
// socks-sent-at of year 10000 (and so made the whole listing's --json
// fail), a negative receive count, and a reason of 6,000 bytes.
func FuzzADeadLetterReadsAsSQSHoldsIt(f *testing.F) {
	f.Add("m-1", []byte(`{"id":"m-1"}`), "no handler", 3, int64(1767225600000), uint32(1767225700), uint8(0), "", "", "", "")
	f.Add("", []byte("x"), "", 0, int64(0), uint32(1767225700), uint8(15), "q-1", "", "-4", "253402300800000")
	f.Add("m-2", []byte{0xff}, "r", 1, int64(1), uint32(1), uint8(15), "", strings.Repeat("é", 3000), "99999999999", "-62135596800001")
	f.Fuzz(func(t *testing.T, id string, body []byte, reason string, receives int, sentMs int64, deadSent uint32, hostile uint8,
		origID, hostileReason, hostileReceives, hostileSentAt string) {
		// SQS's own send time of the copy: trusted, and a time JSON holds.
		deadMs := int64(deadSent) * 1000
		failedAt := time.UnixMilli(deadMs).UTC()

		// As socks sends it: a message it received (SQS's receive count
		// and send time, which are never negative nor past year 9999).
		if sent := time.UnixMilli(sentMs).UTC(); receives >= 0 && sentMs >= 0 && jsonWritable(sent) {
			m := store.Message{ID: id, Body: body, ReceiveCount: receives, SentAt: sent}
			d := toDeadLetter(deadMsg(body, deadMs, deadAttrs(m, store.DeadLetterReason(reason)))).letter
			wantID := id
			if wantID == "" {
				wantID = "dead-1"
			}
			if d.ID != wantID || !bytes.Equal(d.Body, body) || d.Reason != store.DeadLetterReason(reason) ||
				d.ReceiveCount != receives || !d.SentAt.Equal(m.SentAt) || !d.FailedAt.Equal(failedAt) {
				t.Fatalf("sent %+v with reason %q, failed at %v; read back %+v", m, reason, failedAt, d)
			}
		}

		// Whatever a producer gave it.
		if hostile&15 == 0 {
			return
		}
		attrs := map[string]sqstypes.MessageAttributeValue{}
		for i, a := range []struct{ name, kind, value string }{
			{attrDeadOrigID, "String", origID},
			{attrDeadReason, "String", hostileReason},
			{attrDeadReceives, "Number", hostileReceives},
			{attrDeadSentAt, "Number", hostileSentAt},
		} {
			if hostile&(1<<i) != 0 {
				attrs[a.name] = sqstypes.MessageAttributeValue{DataType: aws.String(a.kind), StringValue: aws.String(a.value)}
			}
		}
		d := toDeadLetter(deadMsg(body, deadMs, attrs)).letter
		if _, err := json.Marshal(struct {
			store.DeadLetter
			ExpiresAt time.Time
		}{d, d.ExpiresAt()}); err != nil {
			t.Fatalf("attributes%s: the dead letter %+v does not write as JSON: %v", attrWords(attrs), d, err)
		}
		if len(d.Reason) > store.MaxDeadLetterReasonBytes+len("…") {
			t.Fatalf("attributes%s: reason of %d bytes; want at most %d", attrWords(attrs), len(d.Reason), store.MaxDeadLetterReasonBytes+len("…"))
		}
		if _, ok := attrs[attrDeadReason]; ok && d.Reason != store.DeadLetterReason(hostileReason) {
			t.Fatalf("reason %q read as %q; want %q", hostileReason, d.Reason, store.DeadLetterReason(hostileReason))
		}
		if d.ReceiveCount < 0 {
			t.Fatalf("attributes%s: receive count %d", attrWords(attrs), d.ReceiveCount)
		}
		if _, ok := attrs[attrDeadOrigID]; ok && origID != "" && d.ID != origID {
			t.Fatalf("original ID %q read as %q", origID, d.ID)
		}
		wantSent := failedAt
		if _, ok := attrs[attrDeadSentAt]; ok {
			if ms, err := strconv.ParseInt(hostileSentAt, 10, 64); err == nil {
				wantSent = time.UnixMilli(ms).UTC()
				switch {
				case jsonWritable(wantSent):
				case ms > 0:
					wantSent = time.Date(9999, time.December, 31, 23, 59, 59, 999e6, time.UTC)
				default:
					wantSent = time.Date(0, time.January, 1, 0, 0, 0, 0, time.UTC)
				}
			}
		}
		if !d.SentAt.Equal(wantSent) {
			t.Fatalf("socks-sent-at %q read as %v; want %v", hostileSentAt, d.SentAt, wantSent)
		}
	})
}
