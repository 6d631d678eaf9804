package gunzip

import "math/bits"

// Decoding tables. A Huffman code is decoded with one lookup in a main table
// indexed by the next tableBits input bits (deflate packs codes starting
// with their first bit in the lowest position, so the table is indexed by
// bit-reversed codes); a code longer than that goes on to a subtable the main
// entry points to. This is zlib's and libdeflate's scheme; the entry layout
// is this package's own.
//
// An entry (uint32):
//
//	bits 0-4   bits the entry consumes: the code's length (or, in a
//	           subtable, its length past the main table; a subtable
//	           pointer consumes the main table's bits)
//	bit  5     flagLiteral: a literal byte, in the value field
//	bit  6     flagSub: a subtable pointer; bits 8-12 are the subtable's
//	           index bits and the value is its offset in the table
//	bit  7     flagExceptional: the end of the block (value 0) or a symbol
//	           the format forbids (value valueBad)
//	bits 8-12  extra bits a length or distance reads after its code
//	bits 16-31 the value: literal, base length, base distance, or the
//	           symbol itself in the code-length table
const (
	flagLiteral     = 1 << 5
	flagSub         = 1 << 6
	flagExceptional = 1 << 7

	valueBad = 0xffff
	// entryBad decodes nothing: it is where an incomplete (empty or
	// single-code) Huffman code has no codeword.
	entryBad = flagExceptional | valueBad<<16
)

const (
	litlenTableBits = 11
	distTableBits   = 8
	clenTableBits   = 7

	// The largest tables complete codes can need, from zlib's enough
	// program: 288 symbols of at most 15 bits with an 11-bit root table,
	// and 32 symbols with an 8-bit root.
	litlenTableSize = 2342
	distTableSize   = 402
	clenTableSize   = 1 << clenTableBits

	maxCodeLen = 15
)

// Base values and extra bits of the length symbols 257-285 and the distance
// symbols 0-29 (RFC 1951 section 3.2.5).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// Entry payloads (everything but the consumed bits) by symbol.
var litlenPayload, distPayload, clenPayload [288]uint32

// The fixed Huffman code's tables (RFC 1951 section 3.2.6).
var fixedLitlen [litlenTableSize]uint32
var fixedDist [distTableSize]uint32

func init() {
	for s := range 256 {
		litlenPayload[s] = flagLiteral | uint32(s)<<16
	}
	litlenPayload[256] = flagExceptional
	for s := 257; s < 286; s++ {
		litlenPayload[s] = uint32(lengthBase[s-257])<<16 | uint32(lengthExtra[s-257])<<8
	}
	for s := 286; s < 288; s++ {
		// Codes 286 and 287 exist in the fixed code but mean nothing.
		litlenPayload[s] = entryBad
	}
	for s := range distPayload {
		if s < 30 {
			distPayload[s] = uint32(distBase[s])<<16 | uint32(distExtra[s])<<8
		} else {
			distPayload[s] = entryBad
		}
	}
	for s := range clenPayload {
		clenPayload[s] = uint32(s) << 16
	}

	var lengths [288]uint8
	for s := range lengths {
		switch {
		case s < 144:
			lengths[s] = 8
		case s < 256:
			lengths[s] = 9
		case s < 280:
			lengths[s] = 7
		default:
			lengths[s] = 8
		}
	}
	if !buildTable(fixedLitlen[:], litlenTableBits, lengths[:], litlenPayload[:]) {
		panic("gunzip: fixed literal/length table")
	}
	for s := range 32 {
		lengths[s] = 5
	}
	if !buildTable(fixedDist[:], distTableBits, lengths[:32], distPayload[:]) {
		panic("gunzip: fixed distance table")
	}
}

// buildTable fills table for the canonical Huffman code with the given code
// lengths (0: the symbol has no code). It accepts what compress/flate
// accepts: a complete code, an empty one, or a single code of length 1
// (zlib writes those); it reports false for any other code, over-subscribed
// or incomplete. Codewords an accepted code lacks decode to entryBad.
func buildTable(table []uint32, tableBits uint, lengths []uint8, payload []uint32) bool {
	var count [maxCodeLen + 1]int
	maxLen := 0
	for _, n := range lengths {
		count[n]++
		maxLen = max(maxLen, int(n))
	}
	mainSize := 1 << tableBits
	if maxLen == 0 {
		fillBad(table[:mainSize])
		return true
	}
	nsym := len(lengths) - count[0]
	count[0] = 0
	// next[n]: the first codeword of length n (RFC 1951 section 3.2.2).
	var next [maxCodeLen + 1]int
	code := 0
	for n := 1; n <= maxLen; n++ {
		code = (code + count[n-1]) << 1
		next[n] = code
	}
	// The codewords the lengths use, in units of the longest length.
	used := 0
	for n := 1; n <= maxLen; n++ {
		used += count[n] << (maxLen - n)
	}
	if used != 1<<maxLen && !(used == 1 && maxLen == 1) {
		return false
	}
	if used != 1<<maxLen {
		fillBad(table[:mainSize])
	}

	// Symbols in canonical order (by length, then by symbol) and their codewords.
	var offs [maxCodeLen + 2]int
	for n := 1; n <= maxLen; n++ {
		offs[n+1] = offs[n] + count[n]
	}
	var sorted [288]uint16
	for s, n := range lengths {
		if n != 0 {
			sorted[offs[n]] = uint16(s)
			offs[n]++
		}
	}
	var codes [288]int
	for i := range nsym {
		n := lengths[sorted[i]]
		codes[i] = next[n]
		next[n]++
	}

	// Codes that fit the main table: replicate each entry over the index
	// bits past its length.
	i := 0
	for ; i < nsym; i++ {
		s := sorted[i]
		n := int(lengths[s])
		if n > int(tableBits) {
			break
		}
		e := payload[s] | uint32(n)
		for r := reverse(codes[i], n); r < mainSize; r += 1 << n {
			table[r] = e
		}
	}
	// Longer codes: those sharing their first tableBits bits are consecutive
	// in canonical order and form a complete subtree, whose depth is the
	// length of its last (longest) code.
	free := mainSize
	prefixOf := func(i int) int { return codes[i] >> (int(lengths[sorted[i]]) - int(tableBits)) }
	for i < nsym {
		prefix := prefixOf(i)
		j := i + 1
		for j < nsym && prefixOf(j) == prefix {
			j++
		}
		subBits := int(lengths[sorted[j-1]]) - int(tableBits)
		if free+1<<subBits > len(table) {
			return false
		}
		table[reverse(prefix, int(tableBits))] = flagSub | uint32(tableBits) | uint32(subBits)<<8 | uint32(free)<<16
		for ; i < j; i++ {
			s := sorted[i]
			n := int(lengths[s])
			sub := n - int(tableBits)
			e := payload[s] | uint32(sub)
			for r := reverse(codes[i], n) >> tableBits; r < 1<<subBits; r += 1 << sub {
				table[free+r] = e
			}
		}
		free += 1 << subBits
	}
	return true
}

func fillBad(t []uint32) {
	for i := range t {
		t[i] = entryBad
	}
}

// reverse returns the n low bits of c in reverse order.
func reverse(c, n int) int {
	return int(bits.Reverse16(uint16(c)) >> (16 - n))
}
