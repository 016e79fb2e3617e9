package rauta

import "encoding/binary"

// Action is what a Decision tells the proxy to do.
type Action uint8

const (
	// ActionContinue passes the request (or response) on unchanged.
	ActionContinue Action = 0
	// ActionReject answers the client now.
	ActionReject Action = 1
	// ActionModify applies a list of ops, in order.
	ActionModify Action = 2
)

// Opcodes of a MODIFY decision (ABI.md, "Output").
const (
	opSetRequestHeader     = 1
	opAddRequestHeader     = 2
	opRemoveRequestHeader  = 3
	opSetPath              = 4
	opSetQuery             = 5
	opSetAuthority         = 6
	opSetResponseHeader    = 7
	opAddResponseHeader    = 8
	opRemoveResponseHeader = 9
	opSetMetadata          = 10
)

// modifyHeader is the length of a MODIFY decision's magic, version, action and op count.
const modifyHeader = 7

// Decision is a plugin's answer, encoded as it is built. The proxy validates it: an invalid
// header name or value, a path not starting with '/', or a reject status outside 100-599 is a
// plugin failure, not an error here.
type Decision struct {
	action Action
	ops    uint32
	buf    []byte // the encoding so far; empty for CONTINUE
}

// Continue passes the request on unchanged: an empty output, the cheapest answer. Adding an op
// to it turns it into a MODIFY, so a plugin can start from Continue and add ops as needed.
func Continue() *Decision {
	return &Decision{action: ActionContinue}
}

// Modify starts a MODIFY decision with no ops; chain the op methods to add some.
func Modify() *Decision {
	d := &Decision{action: ActionModify, buf: make([]byte, modifyHeader, 64)}
	d.buf[0], d.buf[1], d.buf[2] = magic, ABIVersion, byte(ActionModify)
	return d
}

// Reject answers the client with status (100-599), headers and body; nothing goes upstream,
// or the upstream response is discarded.
func Reject(status int, headers Pairs, body []byte) *Decision {
	if status < 0 || status > 0xffff {
		status = 0 // out of range: the proxy refuses it instead of seeing a wrapped status
	}
	n := 3 + 2 + 4 + 4 + len(body)
	for _, h := range headers {
		n += 8 + len(h.Name) + len(h.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, magic, ABIVersion, byte(ActionReject))
	b = binary.LittleEndian.AppendUint16(b, uint16(status))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(headers)))
	for _, h := range headers {
		b = appendStr(b, h.Name)
		b = appendStr(b, h.Value)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	b = append(b, body...)
	return &Decision{action: ActionReject, buf: b}
}

// Action is the decision's action.
func (d *Decision) Action() Action { return d.action }

// Ops is the number of ops of a MODIFY decision.
func (d *Decision) Ops() int { return int(d.ops) }

// Encode returns the decision's bytes as ABI.md specifies them (empty for CONTINUE), in a new
// slice.
func (d *Decision) Encode() []byte {
	return append([]byte{}, d.bytes()...)
}

// bytes returns the encoding without copying it; valid until the next op.
func (d *Decision) bytes() []byte {
	if d.action == ActionModify {
		binary.LittleEndian.PutUint32(d.buf[3:modifyHeader], d.ops)
	}
	return d.buf
}

// op appends one opcode, turning CONTINUE into MODIFY.
func (d *Decision) op(code byte) {
	switch d.action {
	case ActionContinue:
		*d = *Modify()
	case ActionReject:
		panic("rauta: a REJECT decision takes no ops")
	}
	d.ops++
	d.buf = append(d.buf, code)
}

// SetRequestHeader replaces every value of a request header (on_request only).
func (d *Decision) SetRequestHeader(name, value string) *Decision {
	d.op(opSetRequestHeader)
	d.buf = appendStr(appendStr(d.buf, name), value)
	return d
}

// AddRequestHeader adds one value to a request header (on_request only).
func (d *Decision) AddRequestHeader(name, value string) *Decision {
	d.op(opAddRequestHeader)
	d.buf = appendStr(appendStr(d.buf, name), value)
	return d
}

// RemoveRequestHeader removes every value of a request header (on_request only).
func (d *Decision) RemoveRequestHeader(name string) *Decision {
	d.op(opRemoveRequestHeader)
	d.buf = appendStr(d.buf, name)
	return d
}

// SetPath replaces the request path (on_request only); it must start with '/' and is
// normalized again.
func (d *Decision) SetPath(path string) *Decision {
	d.op(opSetPath)
	d.buf = appendStr(d.buf, path)
	return d
}

// SetQuery replaces the query, without the '?' (on_request only).
func (d *Decision) SetQuery(query string) *Decision {
	d.op(opSetQuery)
	d.buf = appendStr(d.buf, query)
	return d
}

// SetAuthority replaces the authority (Host) sent upstream (on_request only).
func (d *Decision) SetAuthority(authority string) *Decision {
	d.op(opSetAuthority)
	d.buf = appendStr(d.buf, authority)
	return d
}

// SetResponseHeader replaces every value of a response header. From on_request it applies to
// the response this request eventually gets, local replies included.
func (d *Decision) SetResponseHeader(name, value string) *Decision {
	d.op(opSetResponseHeader)
	d.buf = appendStr(appendStr(d.buf, name), value)
	return d
}

// AddResponseHeader adds one value to a response header.
func (d *Decision) AddResponseHeader(name, value string) *Decision {
	d.op(opAddResponseHeader)
	d.buf = appendStr(appendStr(d.buf, name), value)
	return d
}

// RemoveResponseHeader removes every value of a response header.
func (d *Decision) RemoveResponseHeader(name string) *Decision {
	d.op(opRemoveResponseHeader)
	d.buf = appendStr(d.buf, name)
	return d
}

// SetMetadata sets a metadata entry, seen by later plugins of this request.
func (d *Decision) SetMetadata(key, value string) *Decision {
	d.op(opSetMetadata)
	d.buf = appendStr(appendStr(d.buf, key), value)
	return d
}

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
