package actions

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestRedactHeader(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"nil", nil, nil},
		{
			"well-known secret headers",
			http.Header{
				"Authorization":       {"Bearer abc"},
				"Proxy-Authorization": {"Basic xyz"},
				"Cookie":              {"a=1", "b=2"},
				"Set-Cookie":          {"s=3"},
			},
			http.Header{
				"Authorization":       {Redacted},
				"Proxy-Authorization": {Redacted},
				"Cookie":              {Redacted, Redacted},
				"Set-Cookie":          {Redacted},
			},
		},
		{
			"names holding a secret word, any case",
			http.Header{
				"X-Api-Key":           {"k"},
				"X-Auth-Token":        {"t"},
				"x-client-secret":     {"s"},
				"X-Hub-Signature-256": {"sha256=1"},
				"X-Session-Id":        {"sid"},
				"X-Password":          {"p"},
				"X-Passwd":            {"p"},
				"X-Credentials":       {"c"},
				"X-AUTHENTICATION":    {"a"},
			},
			http.Header{
				"X-Api-Key":           {Redacted},
				"X-Auth-Token":        {Redacted},
				"x-client-secret":     {Redacted},
				"X-Hub-Signature-256": {Redacted},
				"X-Session-Id":        {Redacted},
				"X-Password":          {Redacted},
				"X-Passwd":            {Redacted},
				"X-Credentials":       {Redacted},
				"X-AUTHENTICATION":    {Redacted},
			},
		},
		{
			"harmless headers kept",
			http.Header{
				"Content-Type": {"application/json"},
				"User-Agent":   {"mqtt-rules"},
				"Keep-Alive":   {"timeout=5"},
				"X-Room":       {"kitchen", "hall"},
			},
			http.Header{
				"Content-Type": {"application/json"},
				"User-Agent":   {"mqtt-rules"},
				"Keep-Alive":   {"timeout=5"},
				"X-Room":       {"kitchen", "hall"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before http.Header
			if tt.in != nil {
				before = tt.in.Clone()
			}
			got := RedactHeader(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("RedactHeader(%v)\n got %v\nwant %v", tt.in, got, tt.want)
			}
			if !reflect.DeepEqual(tt.in, before) {
				t.Errorf("RedactHeader changed its input: got %v, want %v", tt.in, before)
			}
		})
	}
}

func TestRedactHeaderReturnsACopy(t *testing.T) {
	in := http.Header{"X-Room": {"kitchen"}}
	got := RedactHeader(in)
	got["X-Room"][0] = "changed"
	if in["X-Room"][0] != "kitchen" {
		t.Errorf("input value after changing the copy: got %q, want %q", in["X-Room"][0], "kitchen")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "https://hooks.example.com/notify", "https://hooks.example.com/notify"},
		{"harmless query kept in order", "https://h/x?room=kitchen&a=1", "https://h/x?room=kitchen&a=1"},
		{"password", "https://user:s3cret@h/x", "https://user:xxxxx@h/x"},
		{"user name alone may be a token", "https://s3cret@h/x", "https://xxxxx@h/x"},
		{"secret words in names", "https://h/x?token=s3cret&room=k&client_secret=s3cret&X-Amz-Signature=s3cret",
			"https://h/x?token=" + Redacted + "&room=k&client_secret=" + Redacted + "&X-Amz-Signature=" + Redacted},
		{"extra names", "https://h/x?sig=s3cret&apikey=s3cret&api_key=s3cret&access_token=s3cret&code=s3cret",
			"https://h/x?sig=" + Redacted + "&apikey=" + Redacted + "&api_key=" + Redacted + "&access_token=" + Redacted + "&code=" + Redacted},
		{"extra names are whole names only", "https://h/x?signal=1&zipcode=2", "https://h/x?signal=1&zipcode=2"},
		{"escaped name", "https://h/x?access%5Ftoken=s3cret", "https://h/x?access%5Ftoken=" + Redacted},
		{"case-insensitive", "https://h/x?API_KEY=s3cret", "https://h/x?API_KEY=" + Redacted},
		{"repeated", "https://h/x?key=a&key=b", "https://h/x?key=" + Redacted + "&key=" + Redacted},
		{"fragment", "https://h/cb#access_token=s3cret&state=1", "https://h/cb#access_token=" + Redacted + "&state=1"},
		{"port and path kept", "http://127.0.0.1:8080/a/b?x=1", "http://127.0.0.1:8080/a/b?x=1"},
		{"unparsable", "http://h:port/?token=s3cret", unparsableURL},
		{"control character", "http://h/\x7f?token=s3cret", unparsableURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("RedactURL(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("RedactURL(%q) = %q still holds the secret", tt.in, got)
			}
		})
	}
}
