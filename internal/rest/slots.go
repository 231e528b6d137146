package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"timeslots/internal/httpx"
	"timeslots/internal/readcache"
	"timeslots/internal/slots"
	"timeslots/models"
)

// slotJSON is a slot as legacy clients read it; the field order is the
// documented one, IDs are JSON numbers and instants are UTC with Z.
type slotJSON struct {
	ID          int64             `json:"id"`
	ProviderID  int64             `json:"providerId"`
	StartTime   string            `json:"startTime"`
	EndTime     string            `json:"endTime"`
	Date        models.Date       `json:"date"`
	Status      models.SlotStatus `json:"status"`
	Capacity    int               `json:"capacity"`
	BookedCount int               `json:"bookedCount"`
}

// paginationJSON tells a client whether to ask again and with which cursor;
// NextCursor is null on the last page.
type paginationJSON struct {
	Limit      int     `json:"limit"`
	HasMore    bool    `json:"hasMore"`
	NextCursor *string `json:"nextCursor"`
}

type slotListJSON struct {
	Data       []slotJSON     `json:"data"`
	Pagination paginationJSON `json:"pagination"`
}

// instant renders t as RFC 3339 in UTC ("2025-09-09T07:00:00Z").
func instant(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// listSlots serves GET /api/time-slots: one page of slots in (startTime, id)
// order, the order GraphQL's timeSlots uses, from the same manager method.
//
// A page sent again with the same query string is looked up by it first
// (the aliases remember, by query string, the key of each page kept or
// found), before the query is parsed; the page's key is a function of the
// query string, so that is the entry the parsed query would find.
func (h *handler) listSlots(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.RawQuery
	key, known := h.aliases.Get(raw)
	if known {
		if body, hit := h.answers.Get(key); hit {
			httpx.WriteEncodedJSON(w, http.StatusOK, body)
			return
		}
	}
	q, err := parseListQuery(raw)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ticket, cached := h.answers.Begin()
	if cached {
		key = q.key()
		if !known { // else the lookup above missed already, and counted it
			if body, hit := h.answers.Get(key); hit {
				h.aliases.Set(raw, key, len(key))
				httpx.WriteEncodedJSON(w, http.StatusOK, body)
				return
			}
		}
	}
	ctx := r.Context()
	if cached {
		// A page to keep is read on the primary: a read replica may lag
		// behind a change whose event the cache has handled already.
		ctx = slots.OnPrimary(ctx)
	}
	page, err := h.slots.ListSlots(ctx, q.filter, q.page)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := slotListJSON{
		Data:       make([]slotJSON, len(page.Slots)),
		Pagination: paginationJSON{Limit: q.limit, HasMore: page.HasNextPage},
	}
	for i, s := range page.Slots {
		out.Data[i] = slotJSON{
			ID: s.ID, ProviderID: s.ProviderID,
			StartTime: instant(s.StartTime), EndTime: instant(s.EndTime),
			Date: s.Date, Status: s.Status, Capacity: s.Capacity, BookedCount: s.BookedCount,
		}
	}
	if page.HasNextPage && len(page.Slots) > 0 {
		c := page.Cursor(len(page.Slots) - 1)
		out.Pagination.NextCursor = &c
	}
	if !cached {
		httpx.WriteJSON(w, http.StatusOK, out)
		return
	}
	body, err := httpx.EncodeJSON(out)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if scope, ok := q.scope(); ok {
		scope.From, scope.Before = page.Within(scope.From, scope.Before)
		h.answers.Put(ticket, key, body, []readcache.Scope{scope}, page.Changes)
		if !known {
			h.aliases.Set(raw, key, len(key))
		}
	}
	httpx.WriteEncodedJSON(w, http.StatusOK, body)
}

// key answers the cache key of the page q asks for: its parsed filter and
// page, so that the order and spelling of the parameters do not matter.
func (q listQuery) key() string {
	f, _ := json.Marshal(q.filter)
	p, _ := json.Marshal(q.page)
	return fmt.Sprintf("rest /api/time-slots %s %s %d", f, p, q.limit)
}

// scope answers what the page lists, for the cache; false when the
// filter is one the manager refuses (nothing is kept then anyway).
func (q listQuery) scope() (readcache.Scope, bool) {
	from, before, err := q.filter.StartRange()
	if err != nil {
		return readcache.Scope{}, false
	}
	s := readcache.Scope{From: from, Before: before}
	if q.filter.ProviderID != nil {
		s.Providers = []int64{*q.filter.ProviderID}
	}
	return s, true
}
