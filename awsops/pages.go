package awsops

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// maxListPages bounds the pages one listing reads.
const maxListPages = 1000

// pageTokens follows the NextToken (Lambda: NextMarker) of a listing's
// pages. It stops the listing at a token the API gave before (one that
// answers the same page again would be read for ever) and past
// maxListPages pages, with an error saying so.
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
		return false, fmt.Errorf("%s gave more than %s pages; stopped reading there", p.what, thousands(maxListPages))
	}
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	p.seen[t] = true
	return true, nil
}
