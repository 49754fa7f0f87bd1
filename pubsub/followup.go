package pubsub

// MaxFollowUpConnections bounds the connection IDs of one follow-up
// envelope, so that it stays well under MaxEnvelopeBytes with the largest
// body; the broker splits longer lists over several follow-ups.
const MaxFollowUpConnections = 1000

// FollowUp addresses an envelope to exactly some connections. The broker
// enqueues one for the recipients whose delivery failed after its retries
// (5xx, resets, timeouts, throttling past its tries), with the same message
// ID, before it deletes the original: the recipients that got the message
// do not get it again, and the others get it later or end in the dead
// letters with the reason and their connection IDs.
type FollowUp struct {
	// Connections, when set, are the only recipients: users and topics are
	// kept for the record but not looked up again.
	Connections []string `json:"connections,omitempty"`
	// Attempt counts the handlings before this one that could not deliver
	// to Connections (1 for the first follow-up).
	Attempt int `json:"attempt,omitempty"`
	// LastError is why the previous attempt failed.
	LastError string `json:"lastError,omitempty"`
}

// IsFollowUp reports whether the envelope is addressed to connections.
func (f FollowUp) IsFollowUp() bool { return len(f.Connections) > 0 }

func (f FollowUp) validate() error {
	if f.Attempt < 0 {
		return invalid("attempt", "is %d; it counts earlier attempts and cannot be negative", f.Attempt)
	}
	if len(f.Connections) > MaxFollowUpConnections {
		return invalid("connections", "has %d entries; at most %d are allowed", len(f.Connections), MaxFollowUpConnections)
	}
	if f.Attempt > 0 && len(f.Connections) == 0 {
		return invalid("connections", "is empty, but attempt is set: a follow-up names its connections")
	}
	for _, c := range f.Connections {
		if err := validateName("connection ID", c, false); err != nil {
			return err
		}
	}
	if len(f.LastError) > maxLastErrorBytes {
		return invalid("lastError", "is %d bytes; at most %d are allowed", len(f.LastError), maxLastErrorBytes)
	}
	return nil
}

// maxLastErrorBytes bounds FollowUp.LastError.
const maxLastErrorBytes = 1024

// Redriven returns the queue message body data as it goes back onto the
// queue from the dead letters (store.Queue.Redrive, on every backend): a
// follow-up envelope starts its attempts again (Attempt 0, its connections,
// ID, body and last error kept), so that redriving it retries those
// connections with the whole budget of a new message rather than
// dead-lettering it again at once for the attempts it had used up. Any
// other body (an original envelope, a wrapped event, one that does not
// parse) comes back byte for byte.
func Redriven(data []byte) []byte {
	env, err := ParseEnvelope(data)
	if err != nil || env.Attempt == 0 {
		return data
	}
	env.Attempt = 0
	out, err := env.Marshal()
	if err != nil {
		return data
	}
	return out
}
