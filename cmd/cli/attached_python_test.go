package cli

import "testing"

func TestPythonCommand(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want bool
	}{
		{[]string{"python3", "script.py"}, true},
		{[]string{"/usr/bin/python3.11", "-c", "pass"}, true},
		{[]string{"env", "PYTHONPATH=python", "/usr/bin/python3", "-m", "qlaunch.bench"}, true},
		{[]string{"env"}, false},
		{[]string{"qlaunch", "bench"}, false},
		{[]string{"sh", "-c", "python3 x.py"}, false},
	} {
		if got := pythonCommand(c.argv); got != c.want {
			t.Errorf("pythonCommand(%q) = %v, want %v", c.argv, got, c.want)
		}
	}
}
