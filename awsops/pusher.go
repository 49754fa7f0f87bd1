package awsops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// ManagementAPI is the part of the API Gateway Management API client that the
// Pusher calls; *apigatewaymanagementapi.Client satisfies it.
type ManagementAPI interface {
	PostToConnection(ctx context.Context, params *apigatewaymanagementapi.PostToConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
	GetConnection(ctx context.Context, params *apigatewaymanagementapi.GetConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.GetConnectionOutput, error)
	DeleteConnection(ctx context.Context, params *apigatewaymanagementapi.DeleteConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error)
}

var _ ManagementAPI = (*apigatewaymanagementapi.Client)(nil)

// Pusher implements store.Pusher with the Management API, against AWS or
// the local gateway alike.
type Pusher struct {
	api ManagementAPI
}

var _ store.Pusher = (*Pusher)(nil)

// NewPusher returns a Pusher that calls api.
func NewPusher(api ManagementAPI) *Pusher {
	return &Pusher{api: api}
}

const (
	opPost   = "PostToConnection"
	opGet    = "GetConnection"
	opDelete = "DeleteConnection"
)

// Post sends data to the connection as one message. Data over
// pubsub.MaxMessageBytes fails with store.KindTooLarge without a call, since
// API Gateway would refuse it.
func (p *Pusher) Post(ctx context.Context, connectionID string, data []byte) error {
	if len(data) > pubsub.MaxMessageBytes {
		return &store.PushError{
			Kind:         store.KindTooLarge,
			Op:           opPost,
			ConnectionID: connectionID,
			Err:          fmt.Errorf("message is %d bytes, the limit is %d", len(data), pubsub.MaxMessageBytes),
		}
	}
	if data == nil {
		data = []byte{} // the SDK requires Data to be set
	}
	_, err := p.api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID),
		Data:         data,
	})
	return pushError(opPost, connectionID, err)
}

// Get describes the connection.
func (p *Pusher) Get(ctx context.Context, connectionID string) (store.ConnectionInfo, error) {
	out, err := p.api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{
		ConnectionId: aws.String(connectionID),
	})
	if err != nil {
		return store.ConnectionInfo{}, pushError(opGet, connectionID, err)
	}
	var info store.ConnectionInfo
	if out.ConnectedAt != nil {
		info.ConnectedAt = *out.ConnectedAt
	}
	if out.LastActiveAt != nil {
		info.LastActiveAt = *out.LastActiveAt
	}
	if out.Identity != nil {
		info.SourceIP = aws.ToString(out.Identity.SourceIp)
		info.UserAgent = aws.ToString(out.Identity.UserAgent)
	}
	return info, nil
}

// Delete closes the connection.
func (p *Pusher) Delete(ctx context.Context, connectionID string) error {
	_, err := p.api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{
		ConnectionId: aws.String(connectionID),
	})
	return pushError(opDelete, connectionID, err)
}

// pushError classifies an SDK error by its typed error and HTTP status.
// Gone, the one kind on which the broker and prune-stale delete a
// connection's record, takes API Gateway's GoneException (its
// X-Amzn-ErrorType, or the type in the body): a 410 without it may be
// anything's (a proxy, a custom domain mapped elsewhere, a wrong
// callback URL), and the connection may be live; it is KindOther, and
// its error says so.
func pushError(op, connectionID string, err error) error {
	if err == nil {
		return nil
	}
	pe := &store.PushError{Op: op, ConnectionID: connectionID, Err: err}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		pe.Status = re.HTTPStatusCode()
	}
	var (
		gone      *types.GoneException
		limit     *types.LimitExceededException
		tooLarge  *types.PayloadTooLargeException
		forbidden *types.ForbiddenException
	)
	switch {
	case errors.As(err, &gone):
		pe.Kind = store.KindGone
	case errors.As(err, &limit), pe.Status == 429:
		pe.Kind = store.KindThrottled
	case errors.As(err, &tooLarge), pe.Status == 413:
		pe.Kind = store.KindTooLarge
	case errors.As(err, &forbidden), pe.Status == 403:
		pe.Kind = store.KindForbidden
	case pe.Status == 400 && refusesTheID(err):
		pe.Kind = store.KindInvalidID
	default:
		pe.Kind = store.KindOther
	}
	return pe
}

// refusesTheID reports whether a 400 is API Gateway refusing the
// connection ID itself (BadRequestException, "Invalid connectionId:
// ..."). Any other 400 says only that the request was refused (a body
// the server could not read, a signature it could not parse, an answer
// from something that is not API Gateway): the connection may be live, and
// taking it for gone would delete the record of every connection posted to.
func refusesTheID(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "BadRequestException" &&
		strings.Contains(strings.ToLower(apiErr.ErrorMessage()), "invalid connectionid")
}
