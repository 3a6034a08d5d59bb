package window_test

import (
	"fmt"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/window"
)

func Example() {
	w, err := window.New(5*time.Minute, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for i, humidity := range []float64{55, 61, 70} {
		w.Add(start.Add(time.Duration(i)*time.Minute), humidity)
	}

	st := w.Read(start.Add(2 * time.Minute))
	fmt.Println(st.Count, st.Min, st.Max, st.Avg, st.Delta, st.Rate, st.Span)

	// Six minutes on, the first sample is older than five minutes.
	st = w.Read(start.Add(6 * time.Minute))
	fmt.Println(st.Count, st.First, st.Delta)

	// Eight minutes on, all are.
	st = w.Read(start.Add(8 * time.Minute))
	fmt.Println(st.Count, st.Min, st.Rate)
	// Output:
	// 3 55 70 62 15 0.125 2m0s
	// 2 61 9
	// 0 <nil> 0
}

func ExampleWindow_Samples() {
	w, _ := window.New(time.Hour, 0)
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	w.Add(start, 1.5)
	w.Add(start.Add(time.Second), 2.5)

	saved := w.Samples(nil) // the engine writes these to its state file

	restored, _ := window.New(time.Hour, 0)
	if err := restored.Restore(saved); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(restored.Summary() == w.Summary())
	// Output:
	// true
}
