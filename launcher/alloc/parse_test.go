package alloc

import (
	"strings"
	"testing"

	"github.com/qlaunch/qlaunch/launcher/alloc/decide"
)

func TestParseSqueue(t *testing.T) {
	out := "7|PENDING\n8|RUNNING\n9|COMPLETING\n10|CANCELLED\n11|TIMEOUT\n12|RUNNING\ngarbage\n"
	got := ParseSqueue(out, []string{"7", "8", "9", "10", "11", "99"})
	want := map[string]decide.JobState{"7": decide.JobPending, "8": decide.JobRunning, "9": decide.JobRunning, "10": decide.JobEnded, "11": decide.JobEnded}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for id, st := range want {
		if got[id].State != st {
			t.Errorf("job %s: %+v, want state %d", id, got[id], st)
		}
	}
	if got["10"].Detail != "CANCELLED" {
		t.Errorf("detail %q", got["10"].Detail)
	}
}

func TestParseQstat(t *testing.T) {
	out := `Job id            Name             User              Time Use S Queue
----------------  ---------------- ----------------  -------- - -----
101.pbs01         qlaunch-alloc    ann               00:00:00 Q workq
102.pbs01         qlaunch-alloc    ann               00:01:02 R workq
103.pbs-server-l* qlaunch-alloc    ann               00:00:00 F workq
`
	got := ParseQstat(out, []string{"101.pbs01", "102.pbs01", "103.pbs-server-long.example.org", "104.pbs01"})
	if got["101.pbs01"].State != decide.JobPending || got["102.pbs01"].State != decide.JobRunning || len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	// qstat shortens a long id and marks it with '*'.
	if j := got["103.pbs-server-long.example.org"]; j.State != decide.JobEnded || j.Detail != "F" {
		t.Fatalf("the shortened id: %+v", j)
	}
	if !onlyUnknownJobs("qstat: Unknown Job Id 104.pbs01\n") || onlyUnknownJobs("") || onlyUnknownJobs("qstat: cannot connect to server") {
		t.Fatal("onlyUnknownJobs")
	}
}

func TestSubmitEnviron(t *testing.T) {
	env := SubmitEnviron([]string{"PATH=/bin", "SLURM_CONF=/etc/s.conf", "SLURM_JOB_ID=4", "SLURM_NTASKS=2", "SBATCH_PARTITION=x",
		"PBS_JOBID=1.s", "OMPI_MCA_btl=self", "PMIX_RANK=0", "QLAUNCH_SECRET_FILE=/s", "HOME=/root"})
	if got := strings.Join(env, " "); got != "PATH=/bin SLURM_CONF=/etc/s.conf QLAUNCH_SECRET_FILE=/s HOME=/root" {
		t.Fatalf("environment %q", got)
	}
}

func TestParseRequest(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Request
		ok   bool
	}{
		{"list", Request{Op: "list"}, true},
		{" add ", Request{Op: "add"}, true},
		{"remove 123", Request{Op: "remove", ID: "123"}, true},
		{"remove 123.pbs-01.example.org", Request{Op: "remove", ID: "123.pbs-01.example.org"}, true},
		{"remove", Request{}, false},
		{"remove 1 2", Request{}, false},
		{"remove 1;rm", Request{}, false},
		{"list all", Request{}, false},
		{"drop", Request{}, false},
		{"", Request{}, false},
		{"remove " + strings.Repeat("1", 300), Request{}, false},
	} {
		got, err := ParseRequest(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseRequest(%q) = %+v, %v", c.in, got, err)
		}
	}
}

// FuzzParseRequest: a control request is untrusted text (from any client
// that proved the job secret): it is parsed without panicking, and what
// is accepted prints back to a request that parses the same.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"list", "add", "remove 12", "remove 1.s", "remove", " list\t", "remove \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequest(s)
		if err != nil {
			return
		}
		again := r.Op
		if r.ID != "" {
			again += " " + r.ID
		}
		if r2, err := ParseRequest(again); err != nil || r2 != r {
			t.Fatalf("%q parsed to %+v, which reads back as %+v, %v", s, r, r2, err)
		}
		if strings.ContainsAny(r.ID, " \t\n;&|$`'\"") {
			t.Fatalf("id %q holds a separator or shell character", r.ID)
		}
	})
}
