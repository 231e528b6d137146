package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"timeslots/internal/adminjson"
	"timeslots/internal/apperr"
	"timeslots/internal/config"
	"timeslots/internal/slots"
)

// command is one operator subcommand.
type command struct {
	summary string
	flags   func(fs *flag.FlagSet, cfg *config.Config) func(ctx context.Context, c *cmdEnv) error
}

// cmdEnv is what a running subcommand has.
type cmdEnv struct {
	mgr      *slots.Manager
	applied  int // migrations applied when the database was opened
	cfg      *config.Config
	logger   *slog.Logger
	out      *json.Encoder
	progress progressSink
}

// notSeeded is why the demo data is not seeded (slots.SeedResult.Seeded
// false): seeding only fills an empty database.
const notSeeded = "the database has providers already"

var commands = map[string]command{
	"migrate": {
		summary: "apply pending database migrations, then exit",
		flags: func(fs *flag.FlagSet, cfg *config.Config) func(context.Context, *cmdEnv) error {
			return func(ctx context.Context, c *cmdEnv) error { // openStore migrated
				return c.out.Encode(struct {
					Applied int `json:"applied"`
				}{c.applied})
			}
		},
	},
	"seed": {
		summary: "seed the demo providers and their slots into an empty database",
		flags: func(fs *flag.FlagSet, cfg *config.Config) func(context.Context, *cmdEnv) error {
			return func(ctx context.Context, c *cmdEnv) error {
				res, err := c.mgr.SeedDemo(ctx)
				if err != nil {
					return err
				}
				reason := ""
				if !res.Seeded {
					reason = notSeeded
					c.logger.Info("demo data not seeded: " + reason)
				}
				return c.out.Encode(struct {
					Seeded    bool               `json:"seeded"`
					Reason    string             `json:"reason,omitempty"`
					Providers int                `json:"providers"`
					Generate  adminjson.Generate `json:"generate"`
				}{res.Seeded, reason, res.Providers, adminjson.NewGenerate(res.Generate)})
			}
		},
	},
	"generate": {
		summary: "generate the slots of the next N days, or more for providers whose customers book far ahead (idempotent: existing slots are kept)",
		flags: func(fs *flag.FlagSet, cfg *config.Config) func(context.Context, *cmdEnv) error {
			days := fs.Int("days", cfg.GenerateDays, "days ahead to generate, today included (1-365): the floor of every provider's horizon")
			maxDays := fs.Int("max-days", cfg.GenerateMaxDays, "the ceiling of each provider's horizon, which follows its demand (--days to 365); when left out, GENERATE_MAX_DAYS_AHEAD or --days, whichever is larger")
			providers := fs.String("providers", "", "comma-separated provider ids (default: every active provider)")
			return func(ctx context.Context, c *cmdEnv) error {
				in := slots.GenerateInput{DaysAhead: *days, MaxDaysAhead: *maxDays}
				if !flagSet(fs, "max-days") {
					in.MaxDaysAhead = max(*maxDays, *days)
				}
				if *providers != "" {
					for _, s := range strings.Split(*providers, ",") {
						id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
						if err != nil || id < 1 {
							return usageError{fmt.Sprintf("--providers: %q is not a provider id", s)}
						}
						in.ProviderIDs = append(in.ProviderIDs, id)
					}
				}
				in.Progress = c.progress.generate
				res, err := c.mgr.Generate(ctx, in)
				c.progress.done()
				if err != nil {
					return err
				}
				return c.out.Encode(adminjson.NewGenerate(res))
			}
		},
	},
	"cleanup": {
		summary: "delete slots that ended more than N days ago (bookings are kept)",
		flags: func(fs *flag.FlagSet, cfg *config.Config) func(context.Context, *cmdEnv) error {
			daysOld := fs.Int("days-old", cfg.CleanupDaysOld, "delete slots that ended more than this many days ago (0-3650)")
			return func(ctx context.Context, c *cmdEnv) error {
				res, err := c.mgr.Cleanup(ctx, *daysOld, c.progress.cleanup)
				c.progress.done()
				if err != nil {
					return err
				}
				return c.out.Encode(adminjson.NewCleanup(res))
			}
		},
	},
	"stats": {
		summary: "print slot statistics and the last run of each scheduled job as JSON",
		flags: func(fs *flag.FlagSet, cfg *config.Config) func(context.Context, *cmdEnv) error {
			return func(ctx context.Context, c *cmdEnv) error {
				st, err := c.mgr.Stats(ctx)
				if err != nil {
					return err
				}
				maint, err := maintenance(c.cfg, c.mgr).MaintenanceReport(ctx)
				if err != nil {
					return err
				}
				out := adminjson.NewStats(st)
				out.Maintenance = maint
				return c.out.Encode(out)
			}
		},
	},
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// badInput is a domain refusal of the operator's arguments (exit 2).
type badInput struct{ error }

func (badInput) ExitCode() int { return 2 }

// runCommand runs one operator subcommand against the configured database.
// Its answer (or the help asked for) is all it writes to stdout.
// Exit codes: 0 done (also for --help), 1 failure, 2 usage (unknown flag,
// bad argument).
func runCommand(ctx context.Context, name string, args []string, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	cmd := commands[name]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var parseOut strings.Builder // the help, or the flag package's complaint
	fs.SetOutput(&parseOut)
	exec := cmd.flags(fs, cfg)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: timeslots %s [flags]\n\n%s.\n", name, cmd.summary)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
		fmt.Fprintln(fs.Output(), "\nconfiguration (DATABASE_URL, …) comes from environment variables; see README.md.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, werr := io.WriteString(stdout, parseOut.String())
			return werr
		}
		// The flag package wrote the error and the usage; main prints them
		// on stderr.
		return usageError{strings.TrimRight(parseOut.String(), "\n")}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s takes no arguments, got %q (see timeslots %s --help)", name, fs.Args(), name)}
	}
	db, applied, err := openStore(ctx, cfg, logger, 0)
	if err != nil {
		return err
	}
	defer db.Close()
	// The command's changes reach the servers' subscribers like their own
	// (on PostgreSQL; Close sends what is queued before the command ends).
	changes, err := openFeed(ctx, cfg, db, logger)
	if err != nil {
		return err
	}
	defer changes.Close()
	out := json.NewEncoder(stdout)
	out.SetIndent("", "  ")
	env := &cmdEnv{mgr: slots.New(db, slots.WithHorizon(cfg.GenerateDays, cfg.GenerateMaxDays), slots.WithFeed(changes)), applied: applied, cfg: cfg, logger: logger, out: out, progress: newProgress(name, logger)}
	if err := exec(ctx, env); err != nil {
		if apperr.ErrorCode(err) == apperr.BadUserInput {
			return badInput{err}
		}
		return err
	}
	return nil
}

// progressSink shows a long command's progress: a bar on a terminal, log
// lines (at most one a second) otherwise.
type progressSink struct {
	bar    *progressbar.ProgressBar // nil when not on a terminal
	logger *slog.Logger
	name   string
	last   time.Time
}

// progressOut is where the bar is drawn: standard error, so standard output
// stays the command's JSON answer.
var progressOut = os.Stderr

func newProgress(name string, logger *slog.Logger) progressSink {
	p := progressSink{logger: logger, name: name}
	if term.IsTerminal(int(progressOut.Fd())) {
		p.bar = newBar(progressOut, name)
	}
	return p
}

// newBar draws a bar whose total is learned as the work goes (generation
// sets it to the number of providers; cleanup does not know its total and
// shows a spinner with the running count).
func newBar(w io.Writer, name string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
	)
}

func (p *progressSink) generate(g slots.GenerateProgress) {
	if p.bar != nil {
		if p.bar.GetMax64() != int64(g.ProvidersTotal) && g.ProvidersTotal > 0 {
			p.bar.ChangeMax(g.ProvidersTotal)
		}
		p.bar.Describe(fmt.Sprintf("generate: %d created, %d skipped, providers", g.Created, g.Skipped))
		_ = p.bar.Set(g.ProvidersDone)
		return
	}
	if p.due() {
		p.logger.Info("generate progress", slog.Int("providers_done", g.ProvidersDone), slog.Int("providers_total", g.ProvidersTotal),
			slog.Int("created", g.Created), slog.Int("skipped", g.Skipped))
	}
}

func (p *progressSink) cleanup(deleted int) {
	if p.bar != nil {
		_ = p.bar.Set(deleted)
		return
	}
	if p.due() {
		p.logger.Info("cleanup progress", slog.Int("deleted", deleted))
	}
}

// due allows the first log line at once and then one a second.
func (p *progressSink) due() bool {
	now := time.Now()
	if !p.last.IsZero() && now.Sub(p.last) < time.Second {
		return false
	}
	p.last = now
	return true
}

func (p *progressSink) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
