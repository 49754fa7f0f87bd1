package text

import (
	"bytes"
	"fmt"
)

// ByteOrderMark names the encoding of the byte order mark b starts with
// ("UTF-8", "UTF-16LE", "UTF-16BE"), or returns "".
func ByteOrderMark(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\xef\xbb\xbf")):
		return "UTF-8"
	case bytes.HasPrefix(b, []byte("\xff\xfe")):
		return "UTF-16LE"
	case bytes.HasPrefix(b, []byte("\xfe\xff")):
		return "UTF-16BE"
	}
	return ""
}

// UTF8File is the text of a file a person may have saved on Windows, b:
// without the UTF-8 byte order mark Notepad puts at its start, which is no
// part of its first line. A file in UTF-16 (Windows PowerShell 5's `>`
// writes it) is an error saying to save it as UTF-8.
func UTF8File(b []byte) ([]byte, error) {
	switch bom := ByteOrderMark(b); bom {
	case "UTF-8":
		return b[3:], nil
	case "":
		return b, nil
	default:
		return nil, fmt.Errorf("it is %s text: save it as UTF-8 (in PowerShell, Set-Content -Encoding utf8)", bom)
	}
}
