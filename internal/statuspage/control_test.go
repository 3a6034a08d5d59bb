package statuspage

import (
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
)

// enablerStatus is the fixture with the engine's effective enabled, as
// internal/app's Status.
type enablerStatus struct{ *fakeStatus }

func (s enablerStatus) Enabled(rule string) (bool, string, bool) { return s.engine.Enabled(rule) }

var _ httpapi.Enabler = enablerStatus{}

// TestLiveControl: the rules event tells the page whether it may
// control, and a rule enabled or disabled at run time shows in its row
// with the next tick.
func TestLiveControl(t *testing.T) {
	for _, ctl := range []bool{false, true} {
		f := newFixture(t, "")
		srv, _ := serve(t, enablerStatus{f}, Options{Interval: fast, Control: ctl}, "tok")
		s := openStream(t, srv.URL+"/api/live", "Authorization", "Bearer tok")
		rd := decode[rulesControl](t, s.until(t, 5*time.Second, "rules", nil).data)
		if rd.Control != ctl {
			t.Errorf("Options.Control %v: the rules event says control %v", ctl, rd.Control)
		}
		full := decode[tickData](t, s.until(t, 5*time.Second, "full", nil).data)
		on, by := col("enabled"), col("by_control")
		for i, want := range [][2]int64{{1, 0}, {1, 0}, {0, 0}} { // hot, door, off
			if got := [2]int64{full.Rows[i][on], full.Rows[i][by]}; got != want {
				t.Errorf("rule %d: enabled, by_control = %v, want %v", i, got, want)
			}
		}
		if !ctl {
			continue
		}
		if _, err := f.engine.SetEnabled("off", true, "http"); err != nil {
			t.Fatal(err)
		}
		s.until(t, 5*time.Second, "tick", func(data string) bool {
			for _, c := range decode[tickData](t, data).Changed {
				if c[0] == 2 && c[1+on] == 1 && c[1+by] == 1 {
					return true
				}
			}
			return false
		})
	}
}

// rulesControl is a rules event with its control field.
type rulesControl struct {
	rulesData
	Control bool `json:"control"`
}
