package logsafe

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

// b64 reports whether c is of the alphabet a chatter ID is written in.
func b64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// bothCases reports whether s holds an ASCII capital and a small letter.
func bothCases(s string) bool {
	return strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz")
}

// FuzzALogLineNeverHoldsAChatterID writes, as routes and the gateway log
// what a client sent, any text with a chatter ID pasted into it: as the
// line's message, a value, an error and a refusal that quotes it (%q),
// with the JSON and the text handler, verbose or not. The ID is pasted
// whole, or cut short after 20 or more of its characters, or its secret
// part alone and whole where nothing of its alphabet touches it (as
// HideChatterIDs promises); its secret holds capitals and small letters
// (all but about one ID in nine million). No 12 characters in a row of
// what was pasted are written, unless the text around it held them
// itself; and String never gives more than Max characters and "…".
func FuzzALogLineNeverHoldsAChatterID(f *testing.F) {
	secret := []byte("0123456789abcdefghijklmn")
	f.Add("geek ", secret, "", uint8(32), false, false)
	f.Add(`reason="geek `, secret, `" has 5 open connections`, uint8(20), true, false)
	f.Add("?geek=", secret, "&topic=news", uint8(32), false, true)
	f.Add(`"sc_`, secret, `\"x`+strings.Repeat("é", 500), uint8(25), true, false)
	// A secret part that holds "sc_" itself, 13 characters from its end.
	f.Add("?geek=", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 177, 207, 218, 105, 166, 154, 105, 166, 154, 105, 166, 154}, "", uint8(0), false, true)
	f.Fuzz(func(t *testing.T, before string, secretBytes []byte, after string, n uint8, verbose, prefixless bool) {
		var raw [24]byte
		copy(raw[:], secretBytes)
		full := base64.RawURLEncoding.EncodeToString(raw[:])
		pasted := "sc_" + full[:20+int(n)%13]
		if prefixless {
			pasted = full
			if before != "" && b64(before[len(before)-1]) || after != "" && b64(after[0]) {
				return // not standing alone: HideChatterIDs keeps it
			}
		}
		if !bothCases(strings.TrimPrefix(pasted, "sc_")) {
			return
		}
		s := before + pasted + after

		short := String(s, verbose)
		if c := utf8.RuneCountInString(short); c > Max+1 {
			t.Fatalf("String gave %d characters; want at most %d", c, Max+1)
		}
		level := slog.LevelInfo
		if verbose {
			level = slog.LevelDebug
		}
		var buf bytes.Buffer
		for _, h := range []slog.Handler{
			slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}),
			slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}),
		} {
			Logger(slog.New(h)).Info(s, "geek", s, "err", errors.New(s), "reason", fmt.Sprintf("geek %q refused", s), "topics", []string{s})
		}
		buf.WriteString(short)
		buf.WriteString(Error(errors.New(s), verbose).Error())
		got := buf.String()
		for i := 0; i+12 <= len(pasted); i++ {
			w := pasted[i : i+12]
			if strings.Contains(got, w) && !strings.Contains(before, w) && !strings.Contains(after, w) {
				t.Fatalf("%q pasted into %q and %q: the log holds %q of it:\n%s", pasted, before, after, w, got)
			}
		}
	})
}
