package sun_test

import (
	"fmt"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/sun"
)

func ExampleNext() {
	berlin := sun.Location{Latitude: 52.52, Longitude: 13.405}
	tz, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	ev, err := sun.ParseEvent("sunset")
	if err != nil {
		panic(err)
	}
	after := time.Date(2024, 3, 30, 20, 0, 0, 0, tz)
	o, ok := sun.Next(ev, -30*time.Minute, after, berlin, tz)
	fmt.Println(o.At.Format("2006-01-02 15:04 MST"), ok)
	// Output: 2024-03-31 19:09 CEST true
}

func ExampleNext_polarDay() {
	tromso := sun.Location{Latitude: 69.6492, Longitude: 18.9553}
	tz, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		panic(err)
	}
	o, _ := sun.Next(sun.Sunset, 0, time.Date(2024, 6, 21, 12, 0, 0, 0, tz), tromso, tz)
	fmt.Printf("no sunset on %d days, %s to %s\n", o.Skipped, o.FirstSkipped.Format(time.DateOnly), o.LastSkipped.Format(time.DateOnly))
	fmt.Println("next sunset", o.At.Format("2006-01-02 15:04"))
	// Output:
	// no sunset on 34 days, 2024-06-21 to 2024-07-24
	// next sunset 2024-07-26 00:23
}

func ExampleDay() {
	oulu := sun.Location{Latitude: 65.0121, Longitude: 25.4651}
	tz, err := time.LoadLocation("Europe/Helsinki")
	if err != nil {
		panic(err)
	}
	day := sun.Day(time.Date(2024, 6, 21, 9, 0, 0, 0, tz), oulu, tz)
	fmt.Println("sunrise", day.Sunrise.Format("01-02 15:04"))
	fmt.Println("sunset ", day.Sunset.Format("01-02 15:04"))
	fmt.Println("dusk   ", day.Dusk.IsZero())
	// Output:
	// sunrise 06-21 02:18
	// sunset  06-22 00:21
	// dusk    true
}

func ExampleAt() {
	boulder := sun.Location{Latitude: 40, Longitude: -105}
	p := sun.At(time.Date(2010, 6, 21, 16, 0, 0, 0, time.UTC), boulder)
	fmt.Printf("elevation %.2f°, azimuth %.2f°, up %v\n", p.Elevation, p.Azimuth, p.Up)
	// Output: elevation 48.50°, azimuth 99.47°, up true
}
