package pyclient

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr string
	}{
		{in: "latest", want: Latest},
		{in: "", want: Latest},
		{in: "0.16", want: Version{16}},
		{in: "0.16.0", want: Version{16}},
		{in: "0.25", want: Version{25}},
		{in: "0.25.1", want: Version{25}},
		{in: "0.26", want: Version{26}},
		{in: "0.15", wantErr: "knows the output of 0.16 to 0.26"},
		{in: "0.27", wantErr: "knows the output of 0.16 to 0.26"},
		{in: "1.0", wantErr: "want 0.MINOR"},
		{in: "0", wantErr: "want 0.MINOR"},
		{in: "0.x", wantErr: "want 0.MINOR"},
		{in: "0.25.0.1", wantErr: "want 0.MINOR"},
		{in: "0.-1", wantErr: "want 0.MINOR"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	if (Version{}).String() != Latest.String() || !(Version{}).PaddedExponent() {
		t.Errorf("the zero Version is not the latest release")
	}
	for _, k := range Known {
		if _, err := Parse(k); err != nil {
			t.Errorf("Known %q does not parse: %v", k, err)
		}
	}
}

// TestFeatures: each difference starts at the release the README names.
func TestFeatures(t *testing.T) {
	tests := []struct {
		v                        string
		padded, textV1, nameFilt bool
		le10                     string
	}{
		{"0.16", false, false, false, "1e+010"},
		{"0.22", false, false, false, "1e+010"},
		{"0.23", false, true, false, "1e+010"},
		{"0.24", false, true, false, "1e+010"},
		{"0.25", false, true, true, "1e+010"},
		{"0.26", true, true, true, "1e+10"},
	}
	for _, tt := range tests {
		v, err := Parse(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if v.PaddedExponent() != tt.padded || v.TextV1() != tt.textV1 || v.NameFilterMultiprocess() != tt.nameFilt {
			t.Errorf("%s: padded %v, text 1.0.0 %v, name filter %v", v, v.PaddedExponent(), v.TextV1(), v.NameFilterMultiprocess())
		}
		if got := v.FloatToGoString(1e10); got != tt.le10 {
			t.Errorf("%s: FloatToGoString(1e10) = %q, want %q", v, got, tt.le10)
		}
		if got := v.FloatToGoString(1e6); got != "1e+06" {
			t.Errorf("%s: FloatToGoString(1e6) = %q", v, got)
		}
		if v.String() != tt.v {
			t.Errorf("String() = %q, want %q", v.String(), tt.v)
		}
	}
}

// TestGaugeMode: releases before 0.18 serve mostrecent shards one sample
// per process (mode all); every other mode is its own in every release.
func TestGaugeMode(t *testing.T) {
	for _, tt := range []struct {
		v, mode, want string
	}{
		{"0.16", "mostrecent", "all"},
		{"0.17", "livemostrecent", "all"},
		{"0.18", "mostrecent", "mostrecent"},
		{"latest", "livemostrecent", "livemostrecent"},
		{"0.16", "livesum", "livesum"},
		{"0.16", "max", "max"},
		{"0.16", "", ""},
	} {
		v, err := Parse(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.GaugeMode(tt.mode); got != tt.want {
			t.Errorf("%s: GaugeMode(%q) = %q, want %q", tt.v, tt.mode, got, tt.want)
		}
	}
}
