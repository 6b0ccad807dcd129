package inventory

import (
	"bytes"
	"hash/fnv"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// texts draws canonical-looking texts that share prefixes and lengths around the 8 bytes sortTexts
// keys on, with the bytes that order them differently from what a careless key would: zero,
// 0xff, a quote.
func texts() *rapid.Generator[[][]byte] {
	alphabet := []byte{0, 1, '"', '-', '0', '9', 'a', 'f', 0x7f, 0xff}
	text := rapid.Custom(func(t *rapid.T) []byte {
		prefix := rapid.SampledFrom([]string{"", `"`, `"0a1b2c3`, `"0a1b2c3d-`, `"0a1b2c3d-0000-4000`}).Draw(t, "prefix")
		tail := rapid.SliceOfN(rapid.SampledFrom(alphabet), 0, 12).Draw(t, "tail")
		return append([]byte(prefix), tail...)
	})
	return rapid.SliceOfN(text, 0, 80)
}

// sortTexts orders texts exactly as bytes.Compare does, on both of its paths (up to 16 texts, and
// more through the keys), equal texts and texts shorter than a key included.
func TestSortTextsOrdersAsBytesCompare(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := texts().Draw(t, "texts")
		want := slices.Clone(in)
		slices.SortFunc(want, bytes.Compare)
		got := slices.Clone(in)
		scratch := sortTexts(got, nil)
		require.Equal(t, want, got)
		// The scratch handed back is reused as it is given.
		again := slices.Clone(in)
		sortTexts(again, scratch)
		require.Equal(t, want, again)
	})
}

// hashSorted is the FNV-1a hash every stored applied state and inventory entry was made with:
// each text, then a zero byte, through hash/fnv.
func TestHashSortedIsFNV1aWithSeparators(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := texts().Draw(t, "texts")
		h := fnv.New64a()
		for _, x := range in {
			h.Write(x)
			h.Write([]byte{0})
		}
		require.Equal(t, max(h.Sum64(), 1), hashSorted(in))
	})
	require.Equal(t, uint64(14695981039346656037), hashSorted(nil), "no text: the FNV offset basis")
}

// appendQuoted writes what strconv.AppendQuote writes, for strings and bytes, on its fast path
// (printable ASCII) and off it (control characters, DEL, quotes, backslashes, UTF-8 and bytes that
// are not UTF-8).
func TestAppendQuotedIsStrconvAppendQuote(t *testing.T) {
	for _, s := range []string{"", "u-00000001", "ada@example.com", "0a1b2c3d-0000-4000-a000-000000000000", "a\"b", `a\b`, "tab\there",
		"\x00", "\x1f", "\x7f", " ", "~", "Zoë", "日本", "\xff\xfe", "a\u2028b"} {
		require.Equal(t, strconv.Quote(s), string(appendQuoted([]byte("x"), s)[1:]), "string %q", s)
		require.Equal(t, strconv.Quote(s), string(appendQuoted(nil, []byte(s))), "bytes %q", s)
	}
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.String().Draw(t, "s")
		b := rapid.SliceOf(rapid.Byte()).Draw(t, "b")
		require.Equal(t, strconv.Quote(s), string(appendQuoted(nil, s)))
		require.Equal(t, strconv.Quote(string(b)), string(appendQuoted(nil, b)))
	})
}
