package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"timeslots/internal/config"
	"timeslots/internal/slots"
)

// runCommand runs one operator subcommand against the configured database.
func runCommand(ctx context.Context, cmd string, args []string, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stdout)
	days := fs.Int("days", cfg.GenerateDays, "days ahead to generate (1-365)")
	providers := fs.String("providers", "", "comma-separated provider ids (default: every active provider)")
	daysOld := fs.Int("days-old", cfg.CleanupDaysOld, "delete slots that ended more than this many days ago (0-3650)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return usageError{err.Error()}
	}
	db, err := openStore(ctx, cfg, logger, 0)
	if err != nil {
		return err
	}
	defer db.Close()
	mgr := slots.New(db)
	out := json.NewEncoder(stdout)
	out.SetIndent("", "  ")
	switch cmd {
	case "migrate":
		return nil
	case "seed":
		res, err := mgr.SeedDemo(ctx)
		if err != nil {
			return err
		}
		return out.Encode(res)
	case "generate":
		in := slots.GenerateInput{DaysAhead: *days}
		if *providers != "" {
			for _, s := range strings.Split(*providers, ",") {
				id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
				if err != nil || id < 1 {
					return usageError{fmt.Sprintf("--providers: %q is not a provider id", s)}
				}
				in.ProviderIDs = append(in.ProviderIDs, id)
			}
		}
		res, err := mgr.Generate(ctx, in)
		if err != nil {
			return err
		}
		return out.Encode(res)
	case "cleanup":
		res, err := mgr.Cleanup(ctx, *daysOld, nil)
		if err != nil {
			return err
		}
		return out.Encode(res)
	case "stats":
		st, err := mgr.Stats(ctx)
		if err != nil {
			return err
		}
		return out.Encode(st)
	}
	return nil
}
