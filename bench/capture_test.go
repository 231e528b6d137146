package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseParamsReadsQuotedValuesEscapesAndNulls(t *testing.T) {
	vals, nulls := parseParams(`$1 = '42', $2 = NULL, $3 = 'it''s, here', $4 = '2026-12-01 09:00:00+00'`)
	if want := []string{"42", "", "it's, here", "2026-12-01 09:00:00+00"}; !slices.Equal(vals, want) {
		t.Fatalf("values %q, want %q", vals, want)
	}
	if want := []bool{false, true, false, false}; !slices.Equal(nulls, want) {
		t.Fatalf("nulls %v, want %v", nulls, want)
	}
}

func TestParseStatementsKeepsExecutesOfOneDatabaseWithTheirOwnParameters(t *testing.T) {
	log := strings.Join([]string{
		`2026-11-29 01:00:00.000 UTC [10] postgres@bench LOG:  statement: begin`,
		`2026-11-29 01:00:00.001 UTC [10] postgres@bench LOG:  duration: 0.050 ms  parse stmtcache_1: SELECT * FROM "t" WHERE id = $1`,
		`2026-11-29 01:00:00.002 UTC [10] postgres@bench LOG:  duration: 0.010 ms  bind stmtcache_1: SELECT * FROM "t" WHERE id = $1`,
		`2026-11-29 01:00:00.002 UTC [10] postgres@bench DETAIL:  parameters: $1 = '7'`,
		`2026-11-29 01:00:00.003 UTC [10] postgres@bench LOG:  duration: 0.020 ms  execute stmtcache_1: SELECT * FROM "t" WHERE id = $1`,
		`2026-11-29 01:00:00.003 UTC [10] postgres@bench DETAIL:  parameters: $1 = '7'`,
		`2026-11-29 01:00:00.004 UTC [11] postgres@other LOG:  duration: 0.020 ms  execute stmtcache_9: DELETE FROM "x"`,
		`2026-11-29 01:00:00.005 UTC [10] postgres@bench LOG:  duration: 0.900 ms  statement: commit`,
		``,
	}, "\n")
	got := parseStatements(log, "bench")
	var sqls []string
	for _, s := range got {
		sqls = append(sqls, s.SQL)
	}
	if want := []string{"begin", `SELECT * FROM "t" WHERE id = $1`, "commit"}; !slices.Equal(sqls, want) {
		t.Fatalf("statements %q, want %q", sqls, want)
	}
	if got[0].Params != nil || !slices.Equal(got[1].Params, []string{"7"}) || got[2].Params != nil {
		t.Fatalf("parameters %q %q %q: a bind's DETAIL must not land on the statement before it", got[0].Params, got[1].Params, got[2].Params)
	}
}

func TestParseStatementsJoinsTheLinesOfAStatement(t *testing.T) {
	log := strings.Join([]string{
		`2026-11-29 01:00:00.001 UTC [10] postgres@bench LOG:  duration: 0.050 ms  execute stmtcache_2: SELECT river_x FROM river_job`,
		"\tWHERE queue = $1",
		`2026-11-29 01:00:00.003 UTC [10] postgres@bench LOG:  duration: 0.020 ms  execute stmtcache_1: SELECT CASE WHEN a THEN 0`,
		"\t\tELSE 1 END FROM t",
		"\tWHERE provider_id = $1",
		`2026-11-29 01:00:00.003 UTC [10] postgres@bench DETAIL:  parameters: $1 = '7'`,
		"\tnot a continuation: the statement ended at its DETAIL",
		``,
	}, "\n")
	got := parseStatements(log, "bench")
	if len(got) != 1 || got[0].SQL != "SELECT CASE WHEN a THEN 0\n\tELSE 1 END FROM t\nWHERE provider_id = $1" ||
		!slices.Equal(got[0].Params, []string{"7"}) {
		t.Fatalf("statements %+v, want the three lines of one, with its parameter", got)
	}
	if paramAfter(got[0].SQL, "provider_id") != 1 {
		t.Fatalf("provider_id's parameter not found in %q", got[0].SQL)
	}
}

func TestScriptForKeepsTheStatementTextAndDrawsOnlyTheVariedParameter(t *testing.T) {
	st := statement{SQL: `SELECT * FROM "time_slots" WHERE provider_id = $1 AND date >= $2 LIMIT $10`,
		Params: []string{"5", "2026-12-01", "", "", "", "", "", "", "", "21"},
		Nulls:  make([]bool, 10)}
	vary := func(sql string, n int) string {
		if paramAfter(sql, "provider_id") == n {
			return "pid"
		}
		return ""
	}
	sc := scriptFor([]statement{st}, "w0", "\\set pid random(1, 9)\n", vary)
	want := "\\set pid random(1, 9)\nSELECT * FROM \"time_slots\" WHERE provider_id = :pid AND date >= :w0_0_2 LIMIT :w0_0_10;\n"
	if sc.Text != want {
		t.Fatalf("script\n%s\nwant\n%s", sc.Text, want)
	}
	if sc.Defines["w0_0_2"] != "2026-12-01" || sc.Defines["w0_0_10"] != "21" || sc.Defines["w0_0_1"] != "" {
		t.Fatalf("defines %v", sc.Defines)
	}
}

func TestParamAfterFindsTheColumnNotAPrefixOfAnother(t *testing.T) {
	sql := `UPDATE "time_slots" SET "updated_at"=$1 WHERE slot_id = $4 AND id = $2 AND start_time > $3`
	if n := paramAfter(sql, "id"); n != 2 {
		t.Fatalf("id is $%d, want $2", n)
	}
	if n := paramAfter(sql, "provider_id"); n != 0 {
		t.Fatalf("provider_id found as $%d in a statement without it", n)
	}
}

func TestParsePgbenchReadsTheSummaryAndTellsARunWithoutTransactions(t *testing.T) {
	head := "pgbench (15.20 (Debian 15.20-0+deb12u1))\ntransaction type: multiple scripts\nnumber of clients: 32\nnumber of threads: 2\nmaximum number of tries: 1\n"
	var res pgbenchResult
	err := parsePgbench(head+"duration: 2 s\nnumber of transactions actually processed: 4210\nnumber of failed transactions: 3 (0.071%)\n"+
		"latency average = 14.812 ms\ninitial connection time = 402.117 ms\ntps = 2160.376011 (without initial connection time)\n", &res)
	if err != nil || res.Txns != 4210 || res.Failed != 3 || res.TPS != 2160.376011 || res.AvgLat != 14812*time.Microsecond {
		t.Fatalf("parsed %+v, %v", res, err)
	}
	// Its clients still connecting when the time was up: no tps line.
	err = parsePgbench(head+"duration: 1 s\nnumber of transactions actually processed: 0\nnumber of failed transactions: 0 (NaN%)\n", &pgbenchResult{})
	if !errors.Is(err, errNoTransactions) {
		t.Fatalf("a run without transactions: %v, want errNoTransactions", err)
	}
	if err := parsePgbench(head+"pgbench: error: connection to server failed\n", &pgbenchResult{}); err == nil || errors.Is(err, errNoTransactions) {
		t.Fatalf("a run without a summary: %v, want another error", err)
	}
}
