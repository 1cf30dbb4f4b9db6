package instantiate

import (
	"encoding/json"
	"testing"
)

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"target": [[[1,0],[0,0]],[[0,0],[1,0]]], "template": {"qubits": 1}}`))
	f.Add([]byte(`{"target": [[[0,0],[1,0],[0,0],[0,0]],[[1,0],[0,0],[0,0],[0,0]],[[0,0],[0,0],[1,0],[0,0]],[[0,0],[0,0],[0,0],[1,0]]],` +
		`"template": {"qubits": 2, "blocks": [[0,1],[1,0]]}, "seed": 3, "initial": [1,2,3], "starts": 2, "threshold": 1e-8}`))
	f.Add([]byte(`{"target": [[[1,0]]], "template": {"qubits": 9}}`))
	f.Add([]byte(`{"target": [[[1,0],[0,0],[0,0],[0,0]],[[0,0],[1,0],[0,0],[0,0]],[[0,0],[0,0],[1,0],[0,0]],[[0,0],[0,0],[0,0],[1,0]]],` +
		`"template": {"qubits": 2, "blocks": [[1,0]], "gate": [[[1,0],[0,0],[0,0],[0,0]],[[0,0],[1,0],[0,0],[0,0]],[[0,0],[0,0],[1,0],[0,0]],[[0,0],[0,0],[0,0],[-1,0]]]}}`))
	f.Add([]byte(`{"target": [[[1e308,0],[0,0]],[[0,0],[1,0]]], "template": {"qubits": 1}, "max_iterations": -1}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, err := DecodeRequest(payload)
		if err != nil {
			return
		}
		// A valid request has a workspace and round-trips through JSON.
		if _, err := NewWorkspace(req.Target, req.Template); err != nil {
			t.Fatalf("valid request, no workspace: %v", err)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRequest(b); err != nil {
			t.Fatalf("re-encoded request rejected: %v", err)
		}
	})
}
