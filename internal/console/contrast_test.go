package console

import (
	"io/fs"
	"math"
	"regexp"
	"strconv"
	"testing"
)

// TestThemeContrastPassesWCAGAA computes, from the style sheet the
// console ships, the contrast ratio of every pair of text and background
// colours the console draws, and holds each to WCAG AA for normal text
// (4.5:1); the focus ring and the table lines, which are not text, to
// 3:1 against the page.
func TestThemeContrastPassesWCAGAA(t *testing.T) {
	css, err := fs.ReadFile(assetFS, "assets/console.css")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(--[a-z0-9-]+):\s*(#[0-9a-fA-F]{6});`).FindAllStringSubmatch(string(css), -1) {
		vars[m[1]] = m[2]
	}
	pairs := []struct {
		fg, bg string
		min    float64
	}{
		{"--fg", "--bg", 4.5}, {"--muted", "--bg", 4.5}, {"--accent", "--bg", 4.5}, {"--fg", "--card", 4.5},
		{"--muted", "--card", 4.5}, {"--accent-fg", "--accent", 4.5}, {"--error", "--error-bg", 4.5},
		{"--fail-fg", "--fail-bg", 4.5}, {"--ok-fg", "--ok-bg", 4.5}, {"--none-fg", "--none", 4.5},
		{"--focus", "--bg", 3}, {"--line", "--bg", 3},
	}
	for _, b := range Bins {
		pairs = append(pairs, struct {
			fg, bg string
			min    float64
		}{"--" + b.Class + "-fg", "--" + b.Class, 4.5})
	}
	for _, p := range pairs {
		fg, ok1 := vars[p.fg]
		bg, ok2 := vars[p.bg]
		if !ok1 || !ok2 {
			t.Errorf("%s on %s: the style sheet does not define both", p.fg, p.bg)
			continue
		}
		if r := contrast(fg, bg); r < p.min {
			t.Errorf("%s (%s) on %s (%s): contrast %.2f:1, want at least %.1f:1", p.fg, fg, p.bg, bg, r, p.min)
		}
	}
	// Ratios this function must reproduce (WCAG's own examples).
	if r := contrast("#000000", "#ffffff"); math.Abs(r-21) > 0.01 {
		t.Errorf("black on white: %.2f, want 21", r)
	}
	if r := contrast("#777777", "#ffffff"); math.Abs(r-4.48) > 0.01 {
		t.Errorf("#777 on white: %.2f, want 4.48", r)
	}
}

// contrast is WCAG 2's contrast ratio of two sRGB colours #rrggbb.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

func luminance(hex string) float64 {
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(0) + 0.7152*ch(1) + 0.0722*ch(2)
}
