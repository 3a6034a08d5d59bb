package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// placeFlags are --timezone, --latitude and --longitude: where schedules
// run and where the sun is (docs/time.md). run, test and replay take them.
type placeFlags struct {
	timezone  string
	latitude  string
	longitude string
}

func (p *placeFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&p.timezone, "timezone", "", "IANA time zone of schedules and sun events, e.g. Europe/Berlin (default: the machine's zone)")
	fs.StringVar(&p.latitude, "latitude", "", "latitude of the place, in degrees north (south negative), for sun triggers and `sun`")
	fs.StringVar(&p.longitude, "longitude", "", "longitude of the place, in degrees east (west negative), for sun triggers and `sun`")
}

// parse returns the zone (nil: the machine's) and the location (nil:
// none).
func (p *placeFlags) parse() (*time.Location, *sun.Location, error) {
	var zone *time.Location
	if p.timezone != "" {
		z, err := rules.LoadZone(p.timezone)
		if err != nil {
			return nil, nil, fmt.Errorf("--timezone: %w", err)
		}
		zone = z
	}
	if p.latitude == "" && p.longitude == "" {
		return zone, nil, nil
	}
	if p.latitude == "" || p.longitude == "" {
		return nil, nil, errors.New("--latitude and --longitude: give both")
	}
	lat, err1 := strconv.ParseFloat(p.latitude, 64)
	lon, err2 := strconv.ParseFloat(p.longitude, 64)
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("--latitude %q --longitude %q: want decimal degrees, e.g. --latitude 52.52 --longitude 13.40", p.latitude, p.longitude)
	}
	loc := &sun.Location{Latitude: lat, Longitude: lon}
	if err := loc.Validate(); err != nil {
		return nil, nil, fmt.Errorf("--latitude/--longitude: %w", err)
	}
	return zone, loc, nil
}
