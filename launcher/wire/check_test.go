package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckTask(t *testing.T) {
	good := AppendTask(nil, &Task{Kernel: "echo", Args: []string{"a", ""}, Payload: []byte("p"), LogLevel: -4, LogDepth: -1})
	for _, tc := range []struct {
		name string
		body []byte
		want string // "" for no error
	}{
		{"good", good, ""},
		{"unicode name", AppendTask(nil, &Task{Kernel: "synth·π"}), ""},
		{"empty body", nil, "task log level"},
		{"truncated", good[:len(good)-1], "task payload"},
		{"trailing", append(append([]byte(nil), good...), 0), "trailing bytes"},
		{"missing arg", AppendTask(nil, &Task{Kernel: "echo", Args: []string{"a", "b"}})[:9], "task arg"},
		{"empty name", AppendTask(nil, &Task{}), "empty name"},
		{"long name", AppendTask(nil, &Task{Kernel: strings.Repeat("x", MaxKernelName+1)}), "name of 257 bytes"},
		{"longest name", AppendTask(nil, &Task{Kernel: strings.Repeat("x", MaxKernelName)}), ""},
		{"not utf-8", AppendTask(nil, &Task{Kernel: "a\xffb"}), "not UTF-8"},
		{"newline", AppendTask(nil, &Task{Kernel: "a\nb"}), "control character 0xa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTask(tc.body)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckTask: %v, want nil", err)
			case tc.want != "" && (!errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckTask: %v, want ErrBadMessage saying %q", err, tc.want)
			}
		})
	}
}

func TestCheckTaskAllocatesNothing(t *testing.T) {
	body := AppendTask(nil, &Task{Kernel: "echo", Args: []string{"a", "b", "c"}, Payload: make([]byte, 1<<16)})
	if n := testing.AllocsPerRun(100, func() { _ = CheckTask(body) }); n != 0 {
		t.Fatalf("CheckTask allocated %v times, want 0", n)
	}
}

// FuzzCheckTask: CheckTask accepts a body exactly when DecodeTask does and
// the kernel's name is a valid one.
func FuzzCheckTask(f *testing.F) {
	f.Add(AppendTask(nil, &Task{Kernel: "echo", Args: []string{"a"}, Payload: []byte("x")}))
	f.Add(AppendTask(nil, &Task{Kernel: "echo", Args: []string{"a", "b"}})[:9])
	f.Add(AppendTask(nil, &Task{Kernel: "\x01"}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var tk Task
		derr := DecodeTask(b, &tk)
		cerr := CheckTask(b)
		want := derr
		if want == nil {
			want = checkKernelName([]byte(tk.Kernel))
		}
		if (cerr == nil) != (want == nil) {
			t.Fatalf("CheckTask: %v; DecodeTask and the name check: %v", cerr, want)
		}
		if cerr != nil && !errors.Is(cerr, ErrBadMessage) {
			t.Fatalf("CheckTask: %v does not wrap ErrBadMessage", cerr)
		}
	})
}
