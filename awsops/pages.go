package awsops

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/socks-dev/socks/internal/text"
)

// maxListPages bounds the pages one listing reads.
const maxListPages = 1000

// pageTokens follows the NextToken (Lambda: NextMarker) of a listing's
// pages. It stops the listing at a token the API gave before (one that
// answers the same page again would be read for ever) and past
// maxListPages pages, with an error saying so. A DynamoDB Query or Scan
// follows its LastEvaluatedKey with nextKey.
type pageTokens struct {
	// what names the listing in the error: "SNS ListSubscriptions".
	what  string
	seen  map[string]bool
	pages int
}

// next takes the NextToken of the page just read and reports whether
// there is another page to read; an error says why the listing stops
// short of its end.
func (p *pageTokens) next(token *string) (bool, error) {
	p.pages++
	t := aws.ToString(token)
	switch {
	case t == "":
		return false, nil
	case p.seen[t]:
		return false, fmt.Errorf("%s gave the same page token twice, after %d pages; stopped reading there", p.what, p.pages)
	case p.pages >= maxListPages:
		return false, fmt.Errorf("%s gave more than %s pages; stopped reading there", p.what, text.Thousands(maxListPages))
	}
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	p.seen[t] = true
	return true, nil
}

// nextKey is next for a DynamoDB Query or Scan, whose page token is its
// LastEvaluatedKey (the generated paginators follow it with no check): it
// stops the walk at a key given before, with an error saying so. It does
// not stop it after maxListPages: a walk of a table reads it to its end,
// however many 1 MB pages that is. A walk of one page (no key, as most
// fan-out Queries are) costs a length check; the keys are kept from its
// second page on.
func (p *pageTokens) nextKey(key map[string]types.AttributeValue) error {
	p.pages++
	if len(key) == 0 {
		return nil
	}
	k := pageKeyString(key)
	if p.seen[k] {
		return fmt.Errorf("%s gave the same LastEvaluatedKey twice, after %d pages; stopped reading there", p.what, p.pages)
	}
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	p.seen[k] = true
	return nil
}

// pageKeyString writes a DynamoDB key as a string that is the same for the
// same key and different for another: its attributes in name order, each
// part length-prefixed.
func pageKeyString(key map[string]types.AttributeValue) string {
	names := make([]string, 0, len(key))
	for n := range key {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	part := func(tag, s string) {
		b.WriteString(tag)
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	for _, n := range names {
		part("", n)
		switch v := key[n].(type) {
		case *types.AttributeValueMemberS:
			part("S", v.Value)
		case *types.AttributeValueMemberN:
			part("N", v.Value)
		case *types.AttributeValueMemberB:
			part("B", string(v.Value))
		default:
			// Not a key's type: what an endpoint sent, as Go prints it.
			part("?", fmt.Sprintf("%#v", v))
		}
	}
	return b.String()
}
