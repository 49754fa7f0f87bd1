package faults

import (
	"context"
	"errors"
	"github.com/socks-dev/socks/internal/backoff"
	"syscall"

	"github.com/socks-dev/socks/store"
)

// Errors of injected faults, as the SDK client would see them.
var (
	errInternal = errors.New("InternalServerErrorException: Internal server error (injected)")
	errLimit    = errors.New("LimitExceededException: Rate exceeded (injected)")
	// errReset wraps syscall.ECONNRESET, as a real reset's error does.
	errReset = &resetError{}
)

type resetError struct{}

func (*resetError) Error() string { return "connection reset by peer (injected)" }
func (*resetError) Unwrap() error { return syscall.ECONNRESET }

// Pusher wraps p so that its posts meet the injector's faults. Get and
// Delete pass through.
func (in *Injector) Pusher(p store.Pusher) store.Pusher {
	return &pusher{Pusher: p, in: in}
}

type pusher struct {
	store.Pusher
	in *Injector
}

func (p *pusher) Post(ctx context.Context, id string, data []byte) error {
	fail := func(kind store.PushErrorKind, status int, err error) error {
		return &store.PushError{Kind: kind, Op: "PostToConnection", ConnectionID: id, Status: status, Err: err}
	}
	switch p.in.drawPost() {
	case Post500:
		return fail(store.KindOther, 500, errInternal)
	case Post429:
		return fail(store.KindThrottled, 429, errLimit)
	case Reset:
		return fail(store.KindOther, 0, errReset)
	case ResetAfter:
		if err := p.Pusher.Post(ctx, id, data); err != nil {
			return err
		}
		return fail(store.KindOther, 0, errReset)
	case Slow:
		if err := backoff.Sleep(ctx, p.in.spec.SlowDelay); err != nil {
			return fail(store.KindOther, 0, err)
		}
	}
	return p.Pusher.Post(ctx, id, data)
}
