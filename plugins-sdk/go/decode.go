package rauta

import (
	"encoding/binary"
	"strconv"
	"unsafe"
)

// ABIVersion is the ABI version this SDK speaks (plugins-sdk/ABI.md).
const ABIVersion = 1

const magic = 0x52 // 'R'

// DecodeError is an input that does not follow ABI.md.
type DecodeError struct {
	// Offset is the byte where decoding stopped.
	Offset int
	Msg    string
}

func (e *DecodeError) Error() string {
	return "rauta: input at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// DecodeInput decodes a call input (ABI.md, "Input"). It copies buf once; the Request's
// strings and Body share that copy.
func DecodeInput(buf []byte) (*Request, error) {
	return decodeOwned(append([]byte(nil), buf...))
}

// decodeOwned decodes a buffer nobody else writes to: the Request aliases it.
func decodeOwned(buf []byte) (*Request, error) {
	r := reader{b: buf}
	if len(buf) > 0 {
		r.s = unsafe.String(&buf[0], len(buf))
	}
	if m := r.u8("magic"); r.err == nil && m != magic {
		r.fail("not a RAUTA input: magic byte 0x" + strconv.FormatUint(uint64(m), 16))
	}
	if v := r.u8("version"); r.err == nil && v != ABIVersion {
		r.fail("input is for ABI version " + strconv.Itoa(int(v)) + "; this SDK speaks version " + strconv.Itoa(ABIVersion))
	}
	phase := r.u8("phase")
	if r.err == nil && phase > 1 {
		r.fail("unknown phase " + strconv.Itoa(int(phase)))
	}
	flags := r.u8("flags")
	req := &Request{
		Phase:     Phase(phase),
		Method:    r.str("method"),
		Scheme:    r.str("scheme"),
		Authority: r.str("authority"),
		Path:      r.str("path"),
		Query:     r.str("query"),
		Client:    r.str("client"),
		Route:     r.str("route"),
		Status:    r.u16("status"),
	}
	req.Headers = r.pairs("request headers")
	req.ResponseHeaders = r.pairs("response headers")
	req.Metadata = r.pairs("metadata")
	if flags&1 != 0 {
		req.HasBody = true
		req.Body = r.bytes("body")
		req.BodyTruncated = flags&2 != 0
	}
	if r.err == nil && r.n != len(r.b) {
		r.fail(strconv.Itoa(len(r.b)-r.n) + " unexpected trailing byte(s)")
	}
	if r.err != nil {
		return nil, r.err
	}
	return req, nil
}

// reader reads the little-endian encoding; the first failure sticks and later reads give zero
// values, so decodeOwned checks once at the end.
type reader struct {
	b   []byte
	s   string // the same bytes as b, for substrings without copies
	n   int
	err *DecodeError
}

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = &DecodeError{Offset: r.n, Msg: msg}
	}
}

func (r *reader) need(k int, what string) bool {
	if r.err != nil {
		return false
	}
	if k < 0 || len(r.b)-r.n < k {
		r.fail("truncated: " + what + " needs " + strconv.Itoa(k) + " more byte(s)")
		return false
	}
	return true
}

func (r *reader) u8(what string) uint8 {
	if !r.need(1, what) {
		return 0
	}
	v := r.b[r.n]
	r.n++
	return v
}

func (r *reader) u16(what string) uint16 {
	if !r.need(2, what) {
		return 0
	}
	v := binary.LittleEndian.Uint16(r.b[r.n:])
	r.n += 2
	return v
}

func (r *reader) u32(what string) int {
	if !r.need(4, what) {
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.n:])
	r.n += 4
	if uint64(v) > uint64(len(r.b)) {
		// no length or count can exceed the input; also keeps int conversions safe on wasm
		r.n -= 4
		r.fail(what + " " + strconv.FormatUint(uint64(v), 10) + " exceeds the input")
		return 0
	}
	return int(v)
}

// span reads a u32 length and returns the start of that many bytes.
func (r *reader) span(what string) (int, int) {
	l := r.u32(what + " length")
	if !r.need(l, what) {
		return 0, 0
	}
	start := r.n
	r.n += l
	return start, r.n
}

func (r *reader) str(what string) string {
	start, end := r.span(what)
	return r.s[start:end]
}

func (r *reader) bytes(what string) []byte {
	start, end := r.span(what)
	return r.b[start:end:end]
}

func (r *reader) pairs(what string) Pairs {
	count := r.u32(what + " count")
	// each pair takes at least 8 bytes: refuse counts the input cannot hold before allocating
	if count == 0 || !r.need(count*8, strconv.Itoa(count)+" "+what) {
		return nil
	}
	out := make(Pairs, count)
	for i := range out {
		out[i].Name = r.str(what + " name")
		out[i].Value = r.str(what + " value")
	}
	return out
}
