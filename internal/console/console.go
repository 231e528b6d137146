// Package console serves the admin console: a sign-in form that turns the
// admin token into a session cookie (httpx.Sessions), and one page of
// pictures instead of JSON — totals, a heat map of utilization by provider
// and day, each provider's horizon and next free slot, the latest
// maintenance runs, buttons that generate and clean up through the REST
// admin endpoints, and a provider's bookings of a day. Everything it shows
// comes from the slots manager; every asset is embedded in the binary, so
// the console works offline and under a strict Content-Security-Policy.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
	"timeslots/models"
)

// Paths of the console.
const (
	Path       = "/admin"
	LoginPath  = "/admin/login"
	LogoutPath = "/admin/logout"
	AssetsPath = "/admin/assets/"
)

// Limits of what one page shows.
const (
	// MaxHeatRows bounds the providers of the heat map and of the table
	// of horizons (each of which reads its next free slot).
	MaxHeatRows = 100
	// MaxBookings bounds the bookings table.
	MaxBookings = 200
	// RecentRuns is how many maintenance runs the page lists.
	RecentRuns = 20
)

// ContentSecurityPolicy is the policy of every console page: nothing but
// the console's own scripts, styles and requests, no inline code, no
// framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options are what the console needs from the composition root.
type Options struct {
	Slots *slots.Manager
	// Gate checks the tokens typed into the sign-in form, counting wrong
	// ones toward its lockout.
	Gate *httpx.AdminGate
	// Sessions signs the cookie; nil without ADMIN_TOKEN, when the
	// console is open to loopback clients (the gate's rule) and has no
	// sign-in.
	Sessions *httpx.Sessions
	// GenerateDays and CleanupDaysOld fill in the forms (the scheduler's
	// own settings).
	GenerateDays, CleanupDaysOld int
	// PlaygroundPath and GraphQLPath are linked from the page.
	PlaygroundPath, GraphQLPath string
	// AdminAPI is the REST path the buttons call (rest.AdminPrefix +
	// "time-slots").
	AdminAPI string
}

type console struct {
	opt   Options
	pages *template.Template
}

// New builds the handler of every path under /admin.
func New(opt Options) (http.Handler, error) {
	if opt.Slots == nil || opt.Gate == nil {
		return nil, errors.New("console: Slots and Gate are required")
	}
	pages, err := template.New("").Funcs(template.FuncMap{
		"percent": func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) + "%" },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	c := &console{opt: opt, pages: pages}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path, c.home)
	mux.HandleFunc("GET "+Path+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path, http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET "+LoginPath, c.loginForm)
	mux.HandleFunc("POST "+LoginPath, c.login)
	mux.HandleFunc("POST "+LogoutPath, c.logout)
	mux.Handle("GET "+AssetsPath, http.StripPrefix(AssetsPath, http.FileServerFS(assets)))
	mux.HandleFunc(Path+"/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error.html", errorPage{Title: "Not found",
			Message: "There is no console page at this address.", Back: Path})
	})
	return headers(mux), nil
}

// headers sets the console's policy on every answer.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var b strings.Builder
	if err := c.pages.ExecuteTemplate(&b, name, data); err != nil {
		httpx.Logger(r.Context()).Error("console template", slog.String("template", name), slog.String("error", err.Error()))
		http.Error(w, "The page could not be drawn; the server log has the reason.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// errorPage is a sentence instead of a page.
type errorPage struct {
	Title, Message, Back string
}

// ---- sign-in ----

type loginPage struct {
	Open      bool   // no ADMIN_TOKEN: nothing to sign in with
	Token     string // the form's CSRF token
	Next      string
	Message   string // why the last attempt failed, as a sentence
	SignedOut bool
}

// safeNext answers where to go after signing in: the console or the
// playground, never another site.
func (c *console) safeNext(next string) string {
	switch next {
	case c.opt.PlaygroundPath:
		return next
	default:
		return Path
	}
}

func (c *console) loginForm(w http.ResponseWriter, r *http.Request) {
	page := loginPage{Open: c.opt.Sessions == nil, Next: c.safeNext(r.URL.Query().Get("next")),
		SignedOut: r.URL.Query().Has("signed_out")}
	if !page.Open {
		if _, ok := c.opt.Sessions.Read(r); ok {
			http.Redirect(w, r, page.Next, http.StatusSeeOther)
			return
		}
		page.Token = c.opt.Sessions.StartLogin(w, r)
	}
	c.render(w, r, http.StatusOK, "login.html", page)
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	next := c.safeNext(r.PostFormValue("next"))
	if c.opt.Sessions == nil {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	again := func(status int, msg string) {
		c.render(w, r, status, "login.html", loginPage{Token: c.opt.Sessions.StartLogin(w, r), Next: next, Message: msg})
	}
	if err := c.opt.Sessions.CheckLogin(r); err != nil {
		again(http.StatusForbidden, sentence(apperr.ErrorMessage(err)))
		return
	}
	token := r.PostFormValue("token")
	if token == "" {
		again(http.StatusUnprocessableEntity, "Type the admin token (ADMIN_TOKEN) to sign in.")
		return
	}
	ok, wait := c.opt.Gate.SignIn(r, token)
	switch {
	case wait > 0:
		secs := int(wait.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		again(http.StatusTooManyRequests, fmt.Sprintf("Too many wrong tokens came from your address; try again in %d seconds.", max(secs, 1)))
		return
	case !ok:
		again(http.StatusUnauthorized, "That is not the admin token. Wrong tokens count toward a short lockout of your address.")
		return
	}
	c.opt.Sessions.Start(w, r)
	httpx.Logger(r.Context()).Info("admin signed in", slog.String("client", httpx.ClientKey(r)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session. The gate has already checked that the request
// came from the console (same origin, the session's CSRF token); without a
// session there is nothing to end.
func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	if sess, ok := httpx.SessionOf(r.Context()); ok && c.opt.Sessions != nil {
		c.opt.Sessions.End(w, r, sess)
	}
	http.Redirect(w, r, LoginPath+"?signed_out", http.StatusSeeOther)
}

// sentence makes a message read as one: capitalised, with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// ---- the console page ----

type homePage struct {
	CSRF           string // empty without a session (open mode)
	SignedIn       bool
	Stats          *slots.Stats
	Heat           heatMap
	Providers      []providerRow
	MoreProviders  int
	Runs           []runRow
	Bookings       bookingsView
	GenerateDays   int
	CleanupDaysOld int
	AdminAPI       string
	PlaygroundPath string
	GraphQLPath    string
	Problems       []string // what could not be read, as sentences
	Bins           any      // the legend (Bins)
}

func (c *console) home(w http.ResponseWriter, r *http.Request) {
	if err := httpx.Admin(r.Context()); err != nil {
		if c.opt.Sessions == nil {
			c.render(w, r, http.StatusForbidden, "error.html", errorPage{Title: "Admins only",
				Message: "ADMIN_TOKEN is not set, so the console is open to loopback clients only, and this request did not come from one.",
				Back:    ""})
			return
		}
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	page := homePage{Bins: Bins, GenerateDays: c.opt.GenerateDays, CleanupDaysOld: c.opt.CleanupDaysOld,
		AdminAPI: c.opt.AdminAPI, PlaygroundPath: c.opt.PlaygroundPath, GraphQLPath: c.opt.GraphQLPath}
	if sess, ok := httpx.SessionOf(ctx); ok {
		page.CSRF, page.SignedIn = sess.CSRFToken(), true
	}
	problem := func(what string, err error) {
		httpx.Logger(ctx).Warn("console: "+what, slog.String("error", err.Error()))
		msg := "The server could not read " + what + " just now; reload the page to try again."
		if code := apperr.ErrorCode(err); code != apperr.Internal {
			msg = "The server could not read " + what + ": " + sentence(apperr.ErrorMessage(err))
		}
		page.Problems = append(page.Problems, msg)
	}
	st, err := c.opt.Slots.Stats(ctx)
	if err != nil {
		problem("the slot statistics", err)
	} else {
		page.Stats = st
		page.Heat = newHeatMap(st)
		page.Providers, page.MoreProviders = c.providerRows(ctx, st, problem)
	}
	if runs, err := c.opt.Slots.RecentJobRuns(ctx, RecentRuns); err != nil {
		problem("the maintenance runs", err)
	} else {
		page.Runs = runRows(runs)
	}
	if st != nil {
		page.Bookings = c.bookings(ctx, r.URL.Query(), st, problem)
	}
	c.render(w, r, http.StatusOK, "console.html", page)
}

// ---- providers ----

type providerRow struct {
	ID          int64
	Name        string
	TimeZone    string
	Active      bool
	TotalSlots  int64
	Utilization float64
	Horizon     string // the last date with a slot
	HorizonEnd  string // the date generation covers now
	HorizonDays int
	NextFree    string // the next bookable slot, in the provider's zone
}

func (c *console) providerRows(ctx context.Context, st *slots.Stats, problem func(string, error)) ([]providerRow, int) {
	us := st.Utilization
	more := 0
	if len(us) > MaxHeatRows {
		us, more = us[:MaxHeatRows], len(us)-MaxHeatRows
	}
	one := 1
	rows := make([]providerRow, 0, len(us))
	failed := false
	for _, u := range us {
		p := u.Provider
		row := providerRow{ID: p.ID, Name: p.Name, TimeZone: p.TimeZone, Active: p.Active, TotalSlots: u.TotalSlots,
			Utilization: u.Utilization, HorizonDays: u.HorizonDays}
		if u.Horizon != nil {
			row.Horizon = string(*u.Horizon)
		}
		if u.HorizonEnd != nil {
			row.HorizonEnd = string(*u.HorizonEnd)
		}
		if !failed && p.Active {
			id := p.ID
			page, err := c.opt.Slots.ListSlots(ctx, slots.SlotFilter{ProviderID: &id}, slots.PageRequest{First: &one})
			if err != nil {
				problem("the next free slots", err)
				failed = true
			} else if len(page.Slots) == 1 {
				row.NextFree = localTime(page.Slots[0].StartTime, p.TimeZone)
			}
		}
		rows = append(rows, row)
	}
	return rows, more
}

// localTime writes t in the zone named zone, as a provider reads it.
func localTime(t time.Time, zone string) string {
	if loc, err := models.LoadLocation(zone); err == nil {
		t = t.In(loc)
	}
	return t.Format("Mon 2 Jan 2006, 15:04 MST")
}

// ---- maintenance runs ----

type runRow struct {
	Job, Outcome, Tick, Started, Finished, Duration, Details, Error string
	Failed                                                          bool
}

func runRows(runs []models.JobRun) []runRow {
	out := make([]runRow, 0, len(runs))
	for _, r := range runs {
		row := runRow{Job: r.Job, Outcome: string(r.Outcome), Tick: r.Tick.UTC().Format(time.RFC3339),
			Started: r.StartedAt.UTC().Format(time.RFC3339), Details: r.Details, Error: r.Error,
			Failed: r.Outcome == models.JobFailed || r.Outcome == models.JobInterrupted}
		if r.FinishedAt != nil {
			row.Finished = r.FinishedAt.UTC().Format(time.RFC3339)
			row.Duration = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
		}
		out = append(out, row)
	}
	return out
}

// ---- bookings ----

type bookingsView struct {
	Providers  []providerOption
	ProviderID int64
	Provider   string
	Date       string
	Query      string
	Rows       []bookingRow
	Total      int  // on the day, before the search
	More       bool // the day has more than MaxBookings
	Message    string
}

type providerOption struct {
	ID       int64
	Name     string
	Selected bool
}

type bookingRow struct {
	Time, Customer, Reference, Status string
	Cancelled                         bool
}

func (c *console) bookings(ctx context.Context, q url.Values, st *slots.Stats, problem func(string, error)) bookingsView {
	v := bookingsView{Query: strings.TrimSpace(q.Get("q"))}
	if len(st.Utilization) == 0 {
		return v
	}
	chosen := st.Utilization[0].Provider
	if id, err := strconv.ParseInt(q.Get("provider"), 10, 64); err == nil {
		for _, u := range st.Utilization {
			if u.Provider.ID == id {
				chosen = u.Provider
			}
		}
	}
	for _, u := range st.Utilization {
		v.Providers = append(v.Providers, providerOption{ID: u.Provider.ID, Name: u.Provider.Name, Selected: u.Provider.ID == chosen.ID})
	}
	v.ProviderID, v.Provider = chosen.ID, chosen.Name
	loc, err := models.LoadLocation(chosen.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	day := models.DateOf(c.opt.Slots.Now().In(loc))
	if s := q.Get("date"); s != "" {
		d, err := models.ParseDate("date", s)
		if err != nil {
			v.Message = "The date must be written as YYYY-MM-DD, such as " + string(day) + "."
			v.Date = s
			return v
		}
		day = d
	}
	v.Date = string(day)
	t := day.Time()
	from := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	to := from.AddDate(0, 0, 1)
	first := MaxBookings
	page, err := c.opt.Slots.ListBookings(ctx, slots.BookingFilter{ProviderID: &chosen.ID, From: &from, To: &to},
		slots.PageRequest{First: &first, Max: MaxBookings})
	if err != nil {
		problem("the bookings", err)
		return v
	}
	v.Total, v.More = len(page.Bookings), page.HasNextPage
	needle := strings.ToLower(v.Query)
	for _, b := range page.Bookings {
		if needle != "" && !strings.Contains(strings.ToLower(b.Customer), needle) && !strings.Contains(strings.ToLower(b.Reference), needle) {
			continue
		}
		v.Rows = append(v.Rows, bookingRow{Time: b.StartTime.In(loc).Format("15:04") + "–" + b.EndTime.In(loc).Format("15:04"),
			Customer: b.Customer, Reference: b.Reference, Status: strings.ToLower(string(b.Status)),
			Cancelled: b.Status == models.BookingCancelled})
	}
	return v
}

// ---- heat map ----

// heatMap is utilization by provider (rows) and local date (columns),
// over the dates from the earliest provider's today to the last date any
// provider has a slot.
type heatMap struct {
	Days []heatDay
	Rows []heatRow
	More int // providers left out (MaxHeatRows)
}

type heatDay struct {
	Date, Weekday, Day string
}

type heatRow struct {
	Provider string
	Cells    []heatCell
}

type heatCell struct {
	Date  string
	Bin   string // the legend's class: none, b0 … b4
	Text  string // the number shown on hover and focus
	Label string // the sentence a screen reader reads
}

// Bins are the legend of the heat map, in order: the class of the cells,
// what the legend says of them, and the utilization (percent) up to which
// a cell falls in the bin.
var Bins = []struct {
	Class, Label string
	UpTo         float64
}{
	{"b0", "0%", 0},
	{"b1", "up to 25%", 25},
	{"b2", "up to 50%", 50},
	{"b3", "up to 75%", 75},
	{"b4", "over 75%", 100},
}

func binOf(u float64) string {
	for _, b := range Bins {
		if u <= b.UpTo {
			return b.Class
		}
	}
	return Bins[len(Bins)-1].Class
}

func newHeatMap(st *slots.Stats) heatMap {
	var out heatMap
	if len(st.Days) == 0 {
		return out
	}
	first, last := st.Days[0].Date, st.Days[0].Date
	for _, d := range st.Days {
		first, last = min(first, d.Date), max(last, d.Date)
	}
	for d := first; d <= last; d = d.AddDays(1) {
		t := d.Time()
		out.Days = append(out.Days, heatDay{Date: string(d), Weekday: t.Format("Mon"), Day: t.Format("2 Jan")})
	}
	byProvider := map[int64][]slots.DayUtilization{}
	for _, d := range st.Days {
		byProvider[d.ProviderID] = append(byProvider[d.ProviderID], d)
	}
	for _, u := range st.Utilization {
		days := byProvider[u.Provider.ID]
		if len(days) == 0 && !u.Provider.Active {
			continue
		}
		if len(out.Rows) == MaxHeatRows {
			out.More++
			continue
		}
		row := heatRow{Provider: u.Provider.Name, Cells: make([]heatCell, 0, len(out.Days))}
		i := 0
		for _, day := range out.Days {
			cell := heatCell{Date: day.Date, Bin: "none", Text: "–",
				Label: fmt.Sprintf("%s, %s %s: no slots", u.Provider.Name, day.Weekday, day.Day)}
			if i < len(days) && string(days[i].Date) == day.Date {
				d := days[i]
				i++
				pct := strconv.FormatFloat(d.Utilization, 'f', -1, 64) + "%"
				cell.Bin, cell.Text = binOf(d.Utilization), pct
				cell.Label = fmt.Sprintf("%s, %s %s: %s booked (%d of %d seats in %d slots)",
					u.Provider.Name, day.Weekday, day.Day, pct, d.Booked, d.Seats, d.Slots)
			}
			row.Cells = append(row.Cells, cell)
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

// Cells answers how many cells the map draws.
func (h heatMap) Cells() int { return len(h.Days) * len(h.Rows) }
