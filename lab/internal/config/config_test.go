package config

import (
	"slices"
	"testing"
)

func TestGoEnvOnSmallLabsOnly(t *testing.T) {
	t.Setenv("GOGC", "")
	small := &Config{Workers: 3}
	if got := small.GoEnv(); !slices.Equal(got, []string{"GOGC=400"}) {
		t.Fatalf("a 4-node lab: %v", got)
	}
	if got := (&Config{Workers: 199}).GoEnv(); len(got) != 1 {
		t.Fatalf("a 200-node lab: %v", got)
	}
	if got := (&Config{Workers: 200}).GoEnv(); got != nil {
		t.Fatalf("a 201-node lab keeps Go's default: %v", got)
	}
	t.Setenv("GOGC", "100")
	if got := small.GoEnv(); got != nil {
		t.Fatalf("GOGC set by the caller is kept: %v", got)
	}
}
