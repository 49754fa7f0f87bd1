package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/internal/loopback"
	"github.com/socks-dev/socks/pubsub"
)

// connectionsPrefix starts every Management API path, after the stage.
const connectionsPrefix = "/@connections/"

// managementTimeFormat is how GET /@connections/{id} writes times: ISO 8601
// in UTC with milliseconds, which the SDK parses as a date-time.
const managementTimeFormat = "2006-01-02T15:04:05.000Z"

// connectionDescription is the body of GET /@connections/{id}.
type connectionDescription struct {
	ConnectedAt  string             `json:"connectedAt"`
	Identity     connectionIdentity `json:"identity"`
	LastActiveAt string             `json:"lastActiveAt"`
}

type connectionIdentity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// serveManagement serves the @connections API for the connection whose
// path-escaped ID is escapedID, the way API Gateway does (REST-JSON; errors
// carry X-Amzn-ErrorType and a {"message": ...} body, so the SDK returns
// its typed errors).
//
// Without Options.Credentials, requests are accepted with any
// Authorization header: signatures are not verified, but a request without
// one gets 403 like API Gateway's "Missing Authentication Token" (a page in
// a browser cannot add one to a request to another origin). A page that
// points its own name at 127.0.0.1 (DNS rebinding) calls as its own origin
// and may add any header, so such requests must also name a loopback host.
// Nor should a browser add one itself to another site's request (HTTP
// authentication the user once gave this address; Chromium keeps that
// per top-level site and does not): a request a browser marks as another
// site's (Sec-Fetch-Site) is refused all the same, as --pprof's are.
func (g *Gateway) serveManagement(w http.ResponseWriter, r *http.Request, escapedID string) {
	if g.opts.Credentials == nil && !loopback.Host(r.Host) {
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "unsigned @connections calls must name localhost or a loopback address in their URL; elsewhere run `socks serve --require-signature` and sign them")
		return
	}
	if g.opts.Credentials == nil && loopback.FromOtherSite(r) {
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "unsigned @connections calls may not come from a web page of another site; call from a program on this machine")
		return
	}
	if r.Header.Get("Authorization") == "" {
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Missing Authentication Token")
		return
	}
	if creds := g.opts.Credentials; creds != nil {
		// Who may send a body is checked before it is read: the form,
		// the access key and the time the signature claims.
		auth, err := parseSigV4(r, *creds, time.Now())
		if err != nil {
			writeAPIError(w, http.StatusForbidden, "ForbiddenException", err.Error())
			return
		}
		// The body is part of the signature: read it (bounded) first. A
		// body over the limit is no call's: refused 413 unverified, for
		// every method (a GET or a DELETE, which never reads its body,
		// would otherwise pass with any signature).
		if r.ContentLength > pubsub.MaxMessageBytes {
			writeTooLarge(w, r.ContentLength)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, pubsub.MaxMessageBytes+1))
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, "BadRequestException", "could not read the request body")
			return
		}
		if len(body) > pubsub.MaxMessageBytes {
			writeTooLarge(w, -1)
			return
		}
		if err := auth.verify(r, body, *creds); err != nil {
			writeAPIError(w, http.StatusForbidden, "ForbiddenException", err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	} else if r.Method != http.MethodPost && r.ContentLength != 0 {
		// Unsigned, a call other than a POST has no use for its body,
		// but one over the limit is refused 413 all the same, as it is
		// signed and as a POST's is: a DELETE with one closed the
		// connection. Read (bounded) and dropped.
		if r.ContentLength > pubsub.MaxMessageBytes {
			writeTooLarge(w, r.ContentLength)
			return
		}
		n, err := io.Copy(io.Discard, io.LimitReader(r.Body, pubsub.MaxMessageBytes+1))
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, "BadRequestException", "could not read the request body")
			return
		}
		if n > pubsub.MaxMessageBytes {
			writeTooLarge(w, -1)
			return
		}
	}
	id, err := url.PathUnescape(escapedID)
	if err != nil || id == "" || strings.Contains(escapedID, "/") {
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
		return
	}
	switch r.Method {
	case http.MethodPost:
		g.postToConnection(w, r, id)
	case http.MethodGet:
		g.getConnection(w, r, id)
	case http.MethodDelete:
		g.deleteConnection(w, r, id)
	default:
		w.Header().Set("Allow", "DELETE, GET, POST")
		writeAPIError(w, http.StatusMethodNotAllowed, "", "Method Not Allowed")
	}
}

// postToConnection sends the request body to the client as one text
// message.
func (g *Gateway) postToConnection(w http.ResponseWriter, r *http.Request, id string) {
	if r.ContentLength > pubsub.MaxMessageBytes {
		writeTooLarge(w, r.ContentLength)
		return
	}
	data, err := readBody(r)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "BadRequestException", "could not read the request body")
		return
	}
	if len(data) > pubsub.MaxMessageBytes {
		writeTooLarge(w, -1)
		return
	}
	c := g.lookup(r.Context(), id)
	if c == nil || !c.post(outbound{kind: websocket.TextMessage, data: data}) {
		writeGone(w)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// bodyChunk is the most of a declared body allocated before its bytes
// come: a smaller body is read in one piece of its size; a larger one's
// first bodyChunk bytes are, and the piece is grown to its whole length
// once they have come (an extra 16 KB allocated and copied, where
// doubling as they come cost a 128 KB body three times its size). A
// length declared and not sent holds no more than this: a local process
// could declare 128 KB, send nothing, and hold that much for bodyWait on
// each of its connections.
const bodyChunk = 16 << 10

// readBody reads the request body, at most one byte past the largest
// message; when its length is declared, into one piece of the right size
// if it is small, else into a first bodyChunk grown once it is full.
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n < 0 || n > pubsub.MaxMessageBytes {
		return io.ReadAll(io.LimitReader(r.Body, pubsub.MaxMessageBytes+1))
	}
	// One more, to see a body longer than declared.
	data := make([]byte, 0, min(n+1, bodyChunk))
	for {
		if len(data) == cap(data) {
			if int64(len(data)) > n {
				return data, nil
			}
			grown := make([]byte, len(data), n+1)
			copy(grown, data)
			data = grown
		}
		k, err := r.Body.Read(data[len(data):cap(data)])
		data = data[:len(data)+k]
		switch {
		case err == io.EOF && int64(len(data)) == n:
			// The n bytes declared, then the end.
			return data, nil
		case err == io.EOF:
			// Fewer is a body cut short (net/http says
			// io.ErrUnexpectedEOF itself): never delivered.
			return data, io.ErrUnexpectedEOF
		case err != nil:
			return data, err
		}
	}
}

// requestID returns the X-Amzn-RequestId of a Management API response:
// unique in this gateway's life, without the cost of a random one.
func (g *Gateway) requestID() string {
	return g.requestIDTag + "-" + strconv.FormatUint(g.requestIDs.Add(1), 36)
}

// getConnection describes a connection.
func (g *Gateway) getConnection(w http.ResponseWriter, r *http.Request, id string) {
	c := g.lookup(r.Context(), id)
	if c == nil {
		writeGone(w)
		return
	}
	body, _ := json.Marshal(connectionDescription{
		ConnectedAt: c.connectedAt.UTC().Format(managementTimeFormat),
		Identity: connectionIdentity{
			SourceIP:  c.sourceIP,
			UserAgent: c.userAgent,
		},
		LastActiveAt: time.UnixMilli(c.lastActiveAt.Load()).UTC().Format(managementTimeFormat),
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// deleteConnection closes a connection with 1000 "connection deleted".
func (g *Gateway) deleteConnection(w http.ResponseWriter, r *http.Request, id string) {
	c := g.lookup(r.Context(), id)
	if c == nil {
		writeGone(w)
		return
	}
	c.closeWith(websocket.CloseNormalClosure, reasonDeleted, true)
	w.WriteHeader(http.StatusNoContent)
}

func writeGone(w http.ResponseWriter) {
	writeAPIError(w, http.StatusGone, "GoneException", "connection is gone")
}

func writeTooLarge(w http.ResponseWriter, n int64) {
	msg := fmt.Sprintf("Message is too long: the limit is %d bytes", pubsub.MaxMessageBytes)
	if n > 0 {
		msg = fmt.Sprintf("Message of %d bytes is too long: the limit is %d bytes", n, pubsub.MaxMessageBytes)
	}
	writeAPIError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", msg)
}

// writeAPIError writes an API Gateway error: the status, the error type in
// X-Amzn-ErrorType (when there is one) and {"message": msg}.
func writeAPIError(w http.ResponseWriter, status int, errorType, msg string) {
	body, _ := json.Marshal(map[string]string{"message": msg})
	if errorType != "" {
		w.Header().Set("X-Amzn-Errortype", errorType)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
