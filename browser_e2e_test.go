package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"timeslots/internal/database"
)

// chromiumPath is Debian's Chromium, which .ci/run installs; the browser
// tests never download one.
const chromiumPath = "/usr/bin/chromium"

// The one browser of this test package, started by the first test that
// needs it and stopped by TestMain; each test gets a browser context of
// its own (cookies included) in it.
var (
	browserOnce    sync.Once
	browserCtx     context.Context
	browserErr     error
	browserStop    = func() {}
	browserProfile string
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserStop()
	if browserProfile != "" {
		_ = os.RemoveAll(browserProfile)
	}
	os.Exit(code)
}

// browser answers a fresh browser context (a tab with its own cookies) in
// the package's headless Chromium, closed at the test's end. Without
// Chromium the test is skipped with a notice, unless REQUIRE_BROWSER=1
// (CI), where it fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("REQUIRE_BROWSER") == "1" {
			t.Fatalf("REQUIRE_BROWSER=1 but %s is missing: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("browser test skipped: %s is missing (apt-get install -y chromium; REQUIRE_BROWSER=1 makes this a failure)", chromiumPath)
	}
	browserOnce.Do(func() {
		browserProfile, browserErr = os.MkdirTemp("", "timeslots-chromium-")
		if browserErr != nil {
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-quic", true),
			// No name resolves: the tests reach only the servers they
			// start on 127.0.0.1, and nothing is ever downloaded.
			chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
			chromedp.UserDataDir(browserProfile),
			chromedp.WindowSize(1280, 900),
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelBrowser := chromedp.NewContext(alloc)
		if browserErr = chromedp.Do(ctx); browserErr != nil {
			cancelBrowser()
			cancelAlloc()
			return
		}
		browserCtx = ctx
		browserStop = func() { cancelBrowser(); cancelAlloc() }
	})
	if browserErr != nil {
		t.Fatalf("start %s: %v", chromiumPath, browserErr)
	}
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	return ctx
}

// consoleDataset starts a production server with a known dataset: two
// providers in UTC who work 08:00–12:00 every day (four hourly slots), a
// week of slots generated, and on each provider's n-th date n mod 5 of
// its slots booked, so the map shows every band. It answers the server and
// how many dates from today on have slots (seven, or six once today's
// hours have passed).
func consoleDataset(t *testing.T, token string) (*testServer, int) {
	t.Helper()
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": token}))
	auth := http.Header{"Authorization": {"Bearer " + token}}
	var hours []string
	for _, d := range []string{"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"} {
		hours = append(hours, fmt.Sprintf(`{weekday: %s, start: "08:00", end: "12:00"}`, d))
	}
	for _, name := range []string{"Dr. Ada", "Dr. Grace"} {
		res := postGraphQL(t, srv.URL, fmt.Sprintf(`mutation { createProvider(input: {name: %q, timeZone: "UTC", slotMinutes: 60, workingHours: [%s]}) { id } }`,
			name, strings.Join(hours, ", ")), nil, auth)
		if len(res.Errors) > 0 {
			t.Fatalf("createProvider: %s", res.Body)
		}
	}
	if res := postGraphQL(t, srv.URL, `mutation { generateSlots(input: {daysAhead: 7}) { created } }`, nil, auth); len(res.Errors) > 0 {
		t.Fatalf("generateSlots: %s", res.Body)
	}
	var page struct {
		Data struct {
			TimeSlots struct {
				Nodes []struct {
					ID, Date string
					Provider struct{ Name string }
				}
			}
		}
	}
	res := postGraphQL(t, srv.URL, `{ timeSlots(first: 100) { nodes { id date provider { name } } } }`, nil, nil)
	if err := json.Unmarshal(res.Body, &page); err != nil || len(page.Data.TimeSlots.Nodes) == 0 {
		t.Fatalf("no slots to book: %s", res.Body)
	}
	dates := map[string][]string{} // provider → its dates in order
	booked := map[string]int{}     // provider and date → slots booked
	for _, s := range page.Data.TimeSlots.Nodes {
		p, key := s.Provider.Name, s.Provider.Name+" "+s.Date
		if ds := dates[p]; len(ds) == 0 || ds[len(ds)-1] != s.Date {
			dates[p] = append(ds, s.Date)
		}
		if booked[key] >= (len(dates[p])-1+len(p))%5 {
			continue
		}
		booked[key]++
		if res := postGraphQL(t, srv.URL, `mutation($id: ID!) { bookSlot(input: {slotId: $id, customer: "Lin"}) { booking { id } } }`,
			map[string]any{"id": s.ID}, nil); len(res.Errors) > 0 {
			t.Fatalf("bookSlot: %s", res.Body)
		}
	}
	var stats struct{ DaysGenerated int }
	a, err := getAnswer(nil, http.MethodGet, srv.URL+"/api/admin/time-slots", auth, nil)
	if err != nil || json.Unmarshal(a.Body, &stats) != nil || stats.DaysGenerated < 6 || stats.DaysGenerated > 7 {
		t.Fatalf("stats: %v %v", a, err)
	}
	return srv, stats.DaysGenerated
}

// screenshot writes the page as a PNG into dir and logs its path; with
// CONSOLE_SCREENSHOT set it also writes there (how docs/console.png is
// made).
func screenshot(t *testing.T, ctx context.Context, dir string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "console.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the console: %s", path)
	if extra := os.Getenv("CONSOLE_SCREENSHOT"); extra != "" {
		if err := os.WriteFile(extra, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// evaluate runs a JavaScript expression in the page and answers its value.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// do runs the steps, failing the test on the first error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInABrowser signs in through the form in headless Chromium,
// reads the heat map of a known dataset (one cell per provider and day,
// each with its number on focus), generates from the page and reads the
// counts it answers, opens the playground with the CDN blocked and reads
// its fallback, signs out, and is refused afterwards: the page sends it
// to sign in, and the admin API answers 401 to its fetch.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	const token = "a-long-enough-admin-token"
	srv, days := consoleDataset(t, token)

	do(t, ctx, chromedp.Navigate(srv.URL+"/admin"), chromedp.WaitVisible(chromedp.ID("token")))
	if at := evaluate[string](t, ctx, `location.pathname`); at != "/admin/login" {
		t.Fatalf("/admin before signing in ended at %s", at)
	}
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("heatmap")),
	)
	cells := evaluate[int](t, ctx, `document.querySelectorAll('#heatmap tbody td').length`)
	columns := evaluate[int](t, ctx, `document.querySelectorAll('#heatmap thead th').length - 1`)
	if columns != days || cells != 2*days {
		t.Errorf("heat map: %d columns and %d cells, want %d and %d (2 providers × %d days)", columns, cells, days, 2*days, days)
	}
	do(t, ctx, chromedp.Focus(chromedp.CSS("#heatmap tbody td")))
	first := evaluate[string](t, ctx, `document.activeElement.getAttribute('aria-label')`)
	detail := evaluate[string](t, ctx, `document.getElementById('heat-detail').textContent`)
	shown := evaluate[string](t, ctx, `getComputedStyle(document.activeElement.querySelector('.n')).visibility`)
	number := evaluate[string](t, ctx, `document.activeElement.textContent.trim()`)
	if !regexp.MustCompile(`^Dr\. Ada, \w{3} \d+ \w{3}: [\d.]+% booked \(\d+ of \d+ seats in \d+ slots\)$`).MatchString(first) ||
		detail != first || shown != "visible" || !strings.Contains(first, ": "+number+" booked") {
		t.Errorf("the focused cell: label %q, detail %q, number %q %s", first, detail, number, shown)
	}
	screenshot(t, ctx, t.TempDir())

	do(t, ctx,
		chromedp.SetValue(chromedp.ID("generate-days"), "5"),
		chromedp.Click(chromedp.ID("generate")),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('result').textContent.startsWith('Created')`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("no answer to the generation: %v (%q)", err, evaluate[string](t, ctx, `document.getElementById('result').textContent`))
	}
	result := evaluate[string](t, ctx, `document.getElementById('result').textContent`)
	if !regexp.MustCompile(`^Created \d+ slots and skipped \d+ that existed, for 2 providers over 5 days, in \d+ ms\.`).MatchString(result) {
		t.Errorf("generation from the page: %q", result)
	}

	// The playground, signed in, with the CDN out of reach (the browser
	// resolves no name): it says so and links to the console and to
	// queries by GET, which answer.
	do(t, ctx, chromedp.Navigate(srv.URL+"/playground"), chromedp.WaitVisible(chromedp.ID("offline")))
	links := evaluate[[]string](t, ctx, `Array.from(document.querySelectorAll('#offline a'), (a) => a.getAttribute('href'))`)
	if len(links) != 3 || links[0] != "/admin" || !strings.HasPrefix(links[1], "/graphql?query=") {
		t.Errorf("the playground's fallback links to %q", links)
	}
	if got := evaluate[string](t, ctx, `fetch(document.querySelectorAll('#offline a')[1].href).then((r) => r.json()).then((b) => b.errors ? 'errors' : 'data')`); got != "data" {
		t.Errorf("the fallback's GET example answered %s", got)
	}

	do(t, ctx, chromedp.Navigate(srv.URL+"/admin"), chromedp.WaitVisible(chromedp.ID("sign-out")))
	do(t, ctx,
		chromedp.Click(chromedp.ID("sign-out")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.Navigate(srv.URL+"/admin"),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	at := evaluate[string](t, ctx, `location.pathname`)
	status := evaluate[int](t, ctx, `fetch('/api/admin/time-slots').then((r) => r.status)`)
	if at != "/admin/login" || status != http.StatusUnauthorized {
		t.Errorf("after signing out: /admin ended at %s, the admin API answered %d", at, status)
	}
}

// TestConsoleByKeyboardOnly signs in and walks the console with Tab
// alone: every link, button, input, select and the heat map (one stop)
// gets the focus, and the arrow keys move between cells.
func TestConsoleByKeyboardOnly(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	const token = "a-long-enough-admin-token"
	srv, _ := consoleDataset(t, token)

	// The token field has the focus: type, then Enter.
	do(t, ctx,
		chromedp.Navigate(srv.URL+"/admin/login"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.KeyEvent(token),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.ID("heatmap")),
	)
	// Number the controls in document order.
	controls := evaluate[[]string](t, ctx, `Array.from(document.querySelectorAll(
		'a[href], button, input:not([type=hidden]), select, [tabindex="0"]'), (el, i) => {
		el.dataset.k = i; return el.id || el.tagName.toLowerCase() + ':' + (el.textContent || '').trim().slice(0, 30);
	})`)
	if len(controls) < 15 {
		t.Fatalf("only %d controls: %v", len(controls), controls)
	}
	var reached []string
	seen := map[string]bool{}
	for range len(controls) + 3 {
		do(t, ctx, chromedp.KeyEvent(kb.Tab))
		k := evaluate[string](t, ctx, `document.activeElement.dataset.k ?? ''`)
		if k != "" && !seen[k] {
			seen[k] = true
			reached = append(reached, k)
		}
	}
	for i, c := range controls {
		if !seen[fmt.Sprint(i)] {
			t.Errorf("Tab never reaches control %d (%s); reached %v of %d", i, c, reached, len(controls))
		}
	}
	do(t, ctx, chromedp.Focus(chromedp.CSS(`#heatmap td[tabindex="0"]`)), chromedp.KeyEvent(kb.ArrowRight))
	if moved := evaluate[string](t, ctx, `document.activeElement.cellIndex + ':' + document.activeElement.tabIndex`); moved != "2:0" {
		t.Errorf("ArrowRight from the first cell: focus on cell index:tabIndex %s, want 2:0", moved)
	}
}
