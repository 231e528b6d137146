package graph_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/models"
)

// adminFields are one operation per admin field, each with a side effect
// (or a read) that must not happen for a refused caller.
var adminFields = map[string]string{
	"slotStats":          `{ slotStats { totalSlots } }`,
	"generateSlots":      `mutation { generateSlots(input: {daysAhead: 3}) { created } }`,
	"cleanupSlots":       `mutation { cleanupSlots(input: {daysOld: 0}) { deleted } }`,
	"createProvider":     `mutation { createProvider(input: {name: "Intruder", timeZone: "UTC", slotMinutes: 30, workingHours: []}) { id } }`,
	"updateProvider":     `mutation($id: ID!) { updateProvider(id: $id, input: {name: "Renamed", timeZone: "UTC", slotMinutes: 30, workingHours: []}) { id } }`,
	"bookings":           `{ bookings { nodes { id customer } } }`,
	"Provider.bookings":  `query($id: ID!) { provider(id: $id) { bookings { nodes { id customer } } } }`,
	"deleteCustomerData": `mutation { deleteCustomerData(customer: "Nobody") { erased } }`,
}

// TestAdminFieldsNeedAdminAccess: with ADMIN_TOKEN set, no token is
// UNAUTHENTICATED and a wrong one FORBIDDEN, and nothing changes; the right
// token works. Without ADMIN_TOKEN loopback clients are admins and others
// are FORBIDDEN.
func TestAdminFieldsNeedAdminAccess(t *testing.T) {
	const token = "the-right-admin-token"
	db := dbtest.Open(t, database.SQLite)
	withToken := newAPI(t, db, map[string]string{"ADMIN_TOKEN": token})
	open := newAPI(t, db, nil)
	ids := allDayProviders(t, withToken.slots, 1)
	idVar := map[string]any{"id": strconv.FormatInt(ids[0], 10)}

	state := func() (providers, slots int64, name string) {
		db.Model(&models.Provider{}).Count(&providers)
		db.Model(&models.TimeSlot{}).Count(&slots)
		var p models.Provider
		db.First(&p, ids[0])
		return providers, slots, p.Name
	}
	before1, before2, before3 := state()

	for field, op := range adminFields {
		for _, c := range []struct {
			who  string
			a    *api
			req  request
			code string
		}{
			{"no token", withToken, request{}, "UNAUTHENTICATED"},
			{"a wrong token", withToken, request{auth: "Bearer the-wrong-admin-token"}, "FORBIDDEN"},
			{"a token that is not a bearer token", withToken, request{auth: "Basic " + token}, "UNAUTHENTICATED"},
			{"a remote client without ADMIN_TOKEN", open, request{from: "192.0.2.7:5555"}, "FORBIDDEN"},
		} {
			body, _ := json.Marshal(map[string]any{"query": op, "variables": idVar})
			c.req.body = string(body)
			if res := c.a.do(t, c.req); res.Code() != c.code {
				t.Errorf("%s with %s: %s", field, c.who, res.Body)
			}
		}
	}
	if a, b, c := state(); a != before1 || b != before2 || c != before3 {
		t.Fatalf("refused calls changed the store: providers %d→%d, slots %d→%d, name %q→%q", before1, a, before2, b, before3, c)
	}

	for field, op := range adminFields {
		body, _ := json.Marshal(map[string]any{"query": op, "variables": idVar})
		if res := withToken.do(t, request{body: string(body), auth: "Bearer " + token, from: "192.0.2.7:5555"}); res.Code() != "" {
			t.Errorf("%s with the right token: %s", field, res.Body)
		}
		if res := open.do(t, request{body: string(body)}); res.Code() != "" {
			t.Errorf("%s from loopback without ADMIN_TOKEN: %s", field, res.Body)
		}
	}
	// Public fields stay public.
	if res := withToken.do(t, request{body: `{"query":"{ providers { totalCount } }"}`, from: "192.0.2.7:5555"}); res.Code() != "" {
		t.Errorf("providers without a token: %s", res.Body)
	}
}
