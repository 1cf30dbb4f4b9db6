package wire

import (
	"fmt"
	"unicode/utf8"
)

// MaxKernelName is the longest kernel name a task record may carry.
const MaxKernelName = 256

// CheckTask reports whether body is a task record a worker rank can run:
// it decodes as a Task (every length within the body, nothing after the
// payload) and names a kernel by a non-empty name of at most
// MaxKernelName bytes of valid UTF-8 without control characters. It
// allocates nothing and reads the payload's length, not its bytes, so a
// server can check every client record before forwarding it
// (launcher's edge check). The error wraps ErrBadMessage and says what is
// wrong.
func CheckTask(body []byte) error {
	d := decoder{b: body}
	d.smallInt("task log level")
	d.smallInt("task log depth")
	k := d.bytes("task kernel")
	n := d.count("task args", 1)
	for range n {
		d.bytes("task arg")
	}
	d.bytes("task payload")
	if err := d.end("task"); err != nil {
		return err
	}
	return checkKernelName(k)
}

func checkKernelName(k []byte) error {
	switch {
	case len(k) == 0:
		return badMessage("task kernel: empty name")
	case len(k) > MaxKernelName:
		return badMessage(fmt.Sprintf("task kernel: name of %d bytes, limit %d", len(k), MaxKernelName))
	case !utf8.Valid(k):
		return badMessage("task kernel: name is not UTF-8")
	}
	for _, c := range k {
		if c < 0x20 || c == 0x7f {
			return badMessage(fmt.Sprintf("task kernel: control character %#x in name", c))
		}
	}
	return nil
}
