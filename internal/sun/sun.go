// Package sun computes where the sun is at a place and when its daily events
// happen there: dawn, sunrise, solar noon, sunset and dusk.
//
// The astronomy is NOAA's solar calculation algorithm, the one behind NOAA's
// Solar Calculator and its NOAA_Solar_Calculations spreadsheets (after Jean
// Meeus, "Astronomical Algorithms", 1991): from the Julian century it derives
// the sun's geometric mean longitude and anomaly, the equation of centre, the
// apparent longitude, the corrected obliquity, and from those the declination
// and the equation of time; the hour angle of an elevation then gives the time
// of an event. Like NOAA's calculator it ignores the observer's height and
// the difference between UT and TT, and its times are good to about a minute
// for latitudes within ±65°.
//
// An event belongs to a solar day: the local day (in the caller's time zone)
// on which its solar noon falls. Far north or south a day's sunset can happen
// after the following midnight, as it does in NOAA's tables.
package sun

import (
	"fmt"
	"math"
	"time"
)

// Elevations of the sun's centre, in degrees, that define the events.
const (
	// horizonElevation is sunrise and sunset: the upper limb on the horizon,
	// with standard refraction (0.567°) and the sun's semi-diameter (0.266°).
	horizonElevation = -0.833
	// civilElevation is dawn and dusk: the start and end of civil twilight.
	civilElevation = -6.0
)

// SearchDays bounds Next: it looks this many local days ahead, then reports
// that the event does not happen.
const SearchDays = 400

// unixJ2000 is the Unix time of the epoch J2000.0 (JD 2451545.0, 2000-01-01
// 12:00), treating UT and TT alike as NOAA's algorithm does.
const unixJ2000 = 946728000

// Location is a place on Earth.
type Location struct {
	// Latitude in degrees, north positive, within -90..90.
	Latitude float64
	// Longitude in degrees, east positive, within -180..180.
	Longitude float64
}

// Validate reports whether the latitude and longitude are in range.
func (l Location) Validate() error {
	if math.IsNaN(l.Latitude) || l.Latitude < -90 || l.Latitude > 90 {
		return fmt.Errorf("latitude %v is not within -90..90", l.Latitude)
	}
	if math.IsNaN(l.Longitude) || l.Longitude < -180 || l.Longitude > 180 {
		return fmt.Errorf("longitude %v is not within -180..180", l.Longitude)
	}
	return nil
}

// Event is one of the sun's daily events.
type Event uint8

// The events, in the order they happen in a day.
const (
	// Dawn is the start of civil twilight: the sun's centre rises through -6°.
	Dawn Event = iota + 1
	// Sunrise is the sun's centre rising through -0.833°.
	Sunrise
	// Noon is solar noon: the sun crosses the meridian.
	Noon
	// Sunset is the sun's centre setting through -0.833°.
	Sunset
	// Dusk is the end of civil twilight: the sun's centre sets through -6°.
	Dusk
)

var eventNames = [...]string{Dawn: "dawn", Sunrise: "sunrise", Noon: "noon", Sunset: "sunset", Dusk: "dusk"}

// String returns the event's name as ParseEvent reads it.
func (e Event) String() string {
	if e.valid() {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", uint8(e))
}

func (e Event) valid() bool { return e >= Dawn && e <= Dusk }

// ParseEvent reads an event's name: sunrise, sunset, dawn, dusk or noon.
func ParseEvent(s string) (Event, error) {
	for e := Dawn; e <= Dusk; e++ {
		if eventNames[e] == s {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown sun event %q: want sunrise, sunset, dawn, dusk or noon", s)
}

// Position is where the sun is seen from a place at an instant.
type Position struct {
	// Elevation is the angle of the sun's centre above the horizon, in degrees,
	// corrected for atmospheric refraction as NOAA's calculator does.
	Elevation float64
	// Azimuth is the sun's direction in degrees clockwise from north, in [0, 360).
	Azimuth float64
	// Up reports whether the sun is between sunrise and sunset: its centre,
	// before refraction, is above -0.833°.
	Up bool
}

// At returns the sun's position at instant t, seen from loc.
func At(t time.Time, loc Location) Position {
	unix := unixSeconds(t)
	decl, eqTime := solarCoordinates(julianCentury(unix))

	// True solar time in minutes of the day (NOAA: UTC time of day + equation
	// of time + 4 × longitude); Unix time counts whole days of 1440 minutes.
	trueSolarTime := math.Mod(unix/60+eqTime+4*loc.Longitude, 1440)
	if trueSolarTime < 0 {
		trueSolarTime += 1440
	}
	hourAngle := radians(trueSolarTime/4 - 180)

	sinLat, cosLat := math.Sincos(radians(loc.Latitude))
	sinDecl, cosDecl := math.Sincos(decl)
	sinHA, cosHA := math.Sincos(hourAngle)
	cosZenith := clamp(sinLat*sinDecl + cosLat*cosDecl*cosHA)
	geometric := 90 - degrees(math.Acos(cosZenith))

	// Azimuth from the hour angle, measured from south westwards (Meeus 13.5),
	// turned to clockwise from north; the same angle as NOAA's formula.
	azimuth := degrees(math.Atan2(sinHA, cosHA*sinLat-sinDecl/cosDecl*cosLat)) + 180
	if azimuth >= 360 {
		azimuth -= 360
	}
	return Position{
		Elevation: geometric + refraction(geometric),
		Azimuth:   azimuth,
		Up:        geometric > horizonElevation,
	}
}

// Events are the sun's events of one solar day. A zero time means the event
// does not happen that day: at high latitudes the sun can stay above or below
// an event's elevation all day (polar day or night, white nights).
type Events struct {
	Dawn, Sunrise, Noon, Sunset, Dusk time.Time
}

// Day returns the events of the solar day whose noon falls on the local day
// of t in tz (UTC when tz is nil), as times in tz. A Location that does not
// Validate has no events.
func Day(t time.Time, loc Location, tz *time.Location) Events {
	if tz == nil {
		tz = time.UTC
	}
	if loc.Validate() != nil {
		return Events{}
	}
	y, m, d := t.In(tz).Date()
	sd := solarDayOn(y, m, d, loc, tz)
	var ev Events
	for e := Dawn; e <= Dusk; e++ {
		at, ok := sd.event(e, loc)
		if !ok {
			continue
		}
		at = at.In(tz)
		switch e {
		case Dawn:
			ev.Dawn = at
		case Sunrise:
			ev.Sunrise = at
		case Noon:
			ev.Noon = at
		case Sunset:
			ev.Sunset = at
		case Dusk:
			ev.Dusk = at
		}
	}
	return ev
}

// Occurrence is the answer of Next.
type Occurrence struct {
	// At is the instant of the event plus the offset, in the time zone.
	At time.Time
	// Skipped counts the local days, from the day Next started on, that it
	// passed over because the event does not happen on them (polar day or
	// night). FirstSkipped and LastSkipped are noon of the first and last of
	// them in the time zone (their dates are what matters); zero when none
	// was skipped.
	Skipped                   int
	FirstSkipped, LastSkipped time.Time
}

// Next returns the first instant strictly after after at which event ev,
// shifted by offset, happens at loc, searching solar days forward in tz (UTC
// when tz is nil). Days without the event are passed over and reported in the
// Occurrence. It reports false when the event does not happen within
// SearchDays days, when ev is not an Event or when loc does not Validate.
func Next(ev Event, offset time.Duration, after time.Time, loc Location, tz *time.Location) (Occurrence, bool) {
	if tz == nil {
		tz = time.UTC
	}
	if !ev.valid() || loc.Validate() != nil {
		return Occurrence{}, false
	}
	// A solar day's events fall within about half a day of its local noon,
	// so the answer is on the local day of after-offset or a later one, or
	// is the previous day's event falling after midnight (a late sunset).
	y, m, d := after.Add(-offset).In(tz).Date()
	var o Occurrence
	for i := -1; i <= SearchDays; i++ {
		sd := solarDayOn(y, m, d+i, loc, tz)
		at, ok := sd.event(ev, loc)
		if !ok {
			if i >= 0 {
				day := time.Date(y, m, d+i, 12, 0, 0, 0, tz)
				if o.Skipped == 0 {
					o.FirstSkipped = day
				}
				o.LastSkipped = day
				o.Skipped++
			}
			continue
		}
		if at = at.Add(offset); at.After(after) {
			o.At = at.In(tz)
			return o, true
		}
	}
	return Occurrence{}, false
}

// solarDay is the solar noon of one local day and the UTC midnight its times
// are counted from (NOAA counts event times in minutes from 0h UTC).
type solarDay struct {
	base float64 // Unix seconds of the UTC midnight the day's times count from
	noon float64 // Unix seconds of solar noon
}

// solarDayOn finds the solar noon that falls on local day y-m-d in tz: the
// transit nearest to 12:00 on the local clock.
func solarDayOn(y int, m time.Month, d int, loc Location, tz *time.Location) solarDay {
	clockNoon := float64(time.Date(y, m, d, 12, 0, 0, 0, tz).Unix())
	meanNoon := (720 - 4*loc.Longitude) * 60 // seconds after 0h UTC, without the equation of time
	base := math.Floor(clockNoon/86400) * 86400
	base += math.Round((clockNoon-base-meanNoon)/86400) * 86400

	// NOAA: solar noon = 720 − 4 × longitude − equation of time (minutes UTC),
	// with the equation of time taken at noon itself; two passes converge.
	noon := base + meanNoon
	for range 2 {
		_, eqTime := solarCoordinates(julianCentury(noon))
		noon = base + meanNoon - eqTime*60
	}
	return solarDay{base: base, noon: noon}
}

// event returns when e happens on the solar day, or false when it does not.
func (sd solarDay) event(e Event, loc Location) (time.Time, bool) {
	var elevation, sign float64
	switch e {
	case Noon:
		return unixTime(sd.noon), true
	case Dawn:
		elevation, sign = civilElevation, -1
	case Sunrise:
		elevation, sign = horizonElevation, -1
	case Sunset:
		elevation, sign = horizonElevation, 1
	case Dusk:
		elevation, sign = civilElevation, 1
	default:
		return time.Time{}, false
	}
	sinLat, cosLat := math.Sincos(radians(loc.Latitude))
	sinElev := math.Sin(radians(elevation))

	// NOAA's calculator computes the hour angle with the sun's declination and
	// equation of time at an estimate of the event, then once more at the
	// result; iterating to a fixed point refines the same calculation.
	t := sd.noon
	for range 6 {
		decl, eqTime := solarCoordinates(julianCentury(t))
		sinDecl, cosDecl := math.Sincos(decl)
		cosHA := (sinElev - sinLat*sinDecl) / (cosLat * cosDecl)
		if cosHA < -1 || cosHA > 1 || math.IsNaN(cosHA) {
			return time.Time{}, false // the sun stays above or below the elevation
		}
		hourAngle := degrees(math.Acos(cosHA))
		next := sd.base + (720-4*loc.Longitude-eqTime+sign*4*hourAngle)*60
		done := math.Abs(next-t) < 0.1
		t = next
		if done {
			break
		}
	}
	return unixTime(t), true
}

// solarCoordinates returns the sun's apparent declination (radians) and the
// equation of time (minutes) at Julian century jc, by NOAA's formulas.
func solarCoordinates(jc float64) (decl, eqTime float64) {
	meanLong := math.Mod(280.46646+jc*(36000.76983+jc*0.0003032), 360) // geometric mean longitude, degrees
	meanAnom := radians(357.52911 + jc*(35999.05029-0.0001537*jc))     // geometric mean anomaly
	ecc := 0.016708634 - jc*(0.000042037+0.0000001267*jc)              // eccentricity of Earth's orbit

	sinM, cosM := math.Sincos(meanAnom)
	sin2M := 2 * sinM * cosM
	sin3M := sinM * (3 - 4*sinM*sinM)
	center := sinM*(1.914602-jc*(0.004817+0.000014*jc)) + sin2M*(0.019993-0.000101*jc) + sin3M*0.000289

	omega := radians(125.04 - 1934.136*jc)
	sinOmega, cosOmega := math.Sincos(omega)
	apparentLong := radians(meanLong + center - 0.00569 - 0.00478*sinOmega)

	meanObliquity := 23 + (26+(21.448-jc*(46.815+jc*(0.00059-jc*0.001813)))/60)/60
	obliquity := radians(meanObliquity + 0.00256*cosOmega)

	decl = math.Asin(math.Sin(obliquity) * math.Sin(apparentLong))

	y := math.Tan(obliquity / 2)
	y *= y
	sin2L, cos2L := math.Sincos(2 * radians(meanLong))
	sin4L := 2 * sin2L * cos2L
	eqTime = 4 * degrees(y*sin2L-2*ecc*sinM+4*ecc*y*sinM*cos2L-0.5*y*y*sin4L-1.25*ecc*ecc*sin2M)
	return decl, eqTime
}

// refraction is NOAA's approximation of atmospheric refraction, in degrees,
// for a geometric elevation in degrees.
func refraction(elevation float64) float64 {
	var arcsec float64
	switch {
	case elevation > 85:
		return 0
	case elevation > 5:
		te := math.Tan(radians(elevation))
		arcsec = 58.1/te - 0.07/(te*te*te) + 0.000086/(te*te*te*te*te)
	case elevation > -0.575:
		e := elevation
		arcsec = 1735 + e*(-518.2+e*(103.4+e*(-12.79+e*0.711)))
	default:
		arcsec = -20.772 / math.Tan(radians(elevation))
	}
	return arcsec / 3600
}

func julianCentury(unix float64) float64 { return (unix - unixJ2000) / 86400 / 36525 }

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

// unixTime returns the instant, rounded to the second.
func unixTime(unix float64) time.Time { return time.Unix(int64(math.Round(unix)), 0) }

func radians(deg float64) float64 { return deg * math.Pi / 180 }

func degrees(rad float64) float64 { return rad * 180 / math.Pi }

func clamp(x float64) float64 { return math.Max(-1, math.Min(1, x)) }

// Value is the `sun` of rule expressions at an instant (docs/time.md): where
// the sun is, and the day's sunrise and sunset in the zone (nil when the
// day has none).
type Value struct {
	Up        bool    `expr:"up" json:"up"`
	Elevation float64 `expr:"elevation" json:"elevation"`
	Azimuth   float64 `expr:"azimuth" json:"azimuth"`
	Sunrise   any     `expr:"sunrise" json:"sunrise"` // time.Time or nil
	Sunset    any     `expr:"sunset" json:"sunset"`   // time.Time or nil
}

// ValueAt returns the sun at instant t seen from loc, with the events of
// the day ev (as Day returns them for t's local day).
func ValueAt(t time.Time, loc Location, ev Events) Value {
	p := At(t, loc)
	v := Value{Up: p.Up, Elevation: p.Elevation, Azimuth: p.Azimuth}
	if !ev.Sunrise.IsZero() {
		v.Sunrise = ev.Sunrise
	}
	if !ev.Sunset.IsZero() {
		v.Sunset = ev.Sunset
	}
	return v
}
