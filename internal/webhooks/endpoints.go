package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"timeslots/internal/apperr"
	"timeslots/internal/slots"
	"timeslots/models"
)

// Limits of an endpoint's input.
const (
	MaxURLLength         = 2048
	MaxDescriptionLength = 500
	// MaxDeliveries is the most deliveries one listing answers.
	MaxDeliveries = 100
)

// TestEvent is the type of the event sendTestEvent delivers.
const TestEvent = "webhook.test"

// secretPrefix starts every signing secret, as Standard Webhooks writes
// them.
const secretPrefix = "whsec_"

// Input is what an admin says about an endpoint: to create one, URL and
// Events are required; to update one, each nil field stays as it is.
type Input struct {
	URL         *string
	Events      []string // nil: unchanged
	Description *string
	Enabled     *bool
}

// Endpoint is a registered endpoint with the event types it wants.
type Endpoint struct {
	models.WebhookEndpoint
	EventTypes []string
}

// Created is a new endpoint and its signing secret, which is shown once.
type Created struct {
	Endpoint Endpoint
	Secret   string
}

func endpointOf(e models.WebhookEndpoint) Endpoint {
	return Endpoint{WebhookEndpoint: e, EventTypes: strings.Split(e.Events, ",")}
}

// check validates in, requiring URL and Events when create, and writes it
// onto e.
func (s *Service) check(in Input, create bool, e *models.WebhookEndpoint) error {
	if in.URL != nil || create {
		if in.URL == nil {
			return apperr.Invalid("url", "url is required")
		}
		u, err := s.checkURL(strings.TrimSpace(*in.URL))
		if err != nil {
			return err
		}
		e.URL = u
	}
	if in.Events != nil || create {
		events, err := checkEvents(in.Events)
		if err != nil {
			return err
		}
		e.Events = strings.Join(events, ",")
	}
	if in.Description != nil {
		d := strings.TrimSpace(*in.Description)
		if err := models.CheckText("description", d, MaxDescriptionLength); err != nil {
			return err
		}
		e.Description = d
	}
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
	}
	return nil
}

// checkURL answers raw if it is an http or https URL with a host, at most
// MaxURLLength bytes; without AllowPrivate, a host written as an address
// deliveries may not reach is refused here already (a name is checked
// when it is dialed).
func (s *Service) checkURL(raw string) (string, error) {
	if raw == "" {
		return "", apperr.Invalid("url", "url is required")
	}
	if err := models.CheckText("url", raw, MaxURLLength); err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.Opaque != "" {
		return "", apperr.Invalid("url", "url must be an absolute http:// or https:// URL with a host")
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && !s.opts.AllowPrivate && !Public(a) {
		return "", apperr.Invalid("url", "url names a loopback, private, link-local or unspecified address, which deliveries may not reach")
	}
	return u.String(), nil
}

// checkEvents answers the event types of events, each once, in the
// documented order, if there is one and each is known.
func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, apperr.Invalid("events", "events must name at least one event type: %s", knownEvents())
	}
	var out []string
	for _, k := range slots.EventKinds {
		if slices.Contains(events, string(k)) {
			out = append(out, string(k))
		}
	}
	for _, e := range events {
		if !slices.Contains(out, e) {
			return nil, apperr.Invalid("events", "events holds an unknown event type (%.64q); known: %s", e, knownEvents())
		}
	}
	return out, nil
}

func knownEvents() string {
	names := make([]string, len(slots.EventKinds))
	for i, k := range slots.EventKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// newSecret is a signing secret: whsec_ and 32 random bytes in base64.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// Create registers an endpoint, enabled, and answers it with its signing
// secret.
func (s *Service) Create(ctx context.Context, in Input) (*Created, error) {
	e := models.WebhookEndpoint{Enabled: true, Secret: newSecret()}
	if err := s.check(in, true, &e); err != nil {
		return nil, err
	}
	e.CreatedAt = s.now().UTC()
	e.UpdatedAt = e.CreatedAt
	if err := s.db.WithContext(ctx).Create(&e).Error; err != nil {
		return nil, dbError("create webhook", err)
	}
	s.changed(ctx)
	return &Created{Endpoint: endpointOf(e), Secret: e.Secret}, nil
}

// Update changes an endpoint's settings; its secret stays.
func (s *Service) Update(ctx context.Context, id int64, in Input) (*Endpoint, error) {
	e, err := s.endpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.check(in, false, e); err != nil {
		return nil, err
	}
	e.UpdatedAt = s.now().UTC()
	if err := s.db.WithContext(ctx).Select("url", "events", "description", "enabled", "updated_at").Updates(e).Error; err != nil {
		return nil, dbError("update webhook", err)
	}
	s.changed(ctx)
	out := endpointOf(*e)
	return &out, nil
}

// Delete removes an endpoint and its deliveries' records; deliveries
// still due to it are dropped when they come up.
func (s *Service) Delete(ctx context.Context, id int64) error {
	res := s.db.WithContext(ctx).Delete(&models.WebhookEndpoint{}, id)
	if res.Error != nil {
		return dbError("delete webhook", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound(id)
	}
	s.changed(ctx)
	return nil
}

// List answers every endpoint, in id order.
func (s *Service) List(ctx context.Context) ([]Endpoint, error) {
	var rows []models.WebhookEndpoint
	if err := s.db.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, dbError("list webhooks", err)
	}
	out := make([]Endpoint, len(rows))
	for i, r := range rows {
		out[i] = endpointOf(r)
	}
	return out, nil
}

// Deliveries answers an endpoint's latest deliveries, the latest attempt
// first, at most limit (1 to MaxDeliveries).
func (s *Service) Deliveries(ctx context.Context, endpointID int64, limit int) ([]models.WebhookDelivery, error) {
	if limit < 1 || limit > MaxDeliveries {
		return nil, apperr.Invalid("first", "first must be between 1 and %d", MaxDeliveries)
	}
	var rows []models.WebhookDelivery
	if err := s.db.WithContext(ctx).Where("endpoint_id = ?", endpointID).Order("updated_at DESC, id DESC").
		Limit(limit).Find(&rows).Error; err != nil {
		return nil, dbError("list webhook deliveries", err)
	}
	return rows, nil
}

// SendTest enqueues a webhook.test event to one enabled endpoint,
// whatever events it wants, and answers the event's id.
func (s *Service) SendTest(ctx context.Context, id int64) (string, error) {
	e, err := s.endpoint(ctx, id)
	if err != nil {
		return "", err
	}
	if !e.Enabled {
		return "", apperr.Invalid("id", "webhook %d is disabled: enable it to send it a test event", id)
	}
	body, eventID, err := eventBody(TestEvent, s.now(), map[string]any{"webhookId": e.ID, "message": "a test event sent by an admin"})
	if err != nil {
		return "", err
	}
	if _, err := s.client.Insert(ctx, deliveryArgs{EndpointID: e.ID, EventID: eventID, Type: TestEvent, Body: body},
		&river.InsertOpts{Queue: queue}); err != nil {
		return "", dbError("enqueue the test event", err)
	}
	return eventID, nil
}

func (s *Service) endpoint(ctx context.Context, id int64) (*models.WebhookEndpoint, error) {
	var e models.WebhookEndpoint
	err := s.db.WithContext(ctx).Take(&e, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, dbError("load webhook", err)
	}
	return &e, nil
}

// changed reads the endpoints again after this process changed them, so
// its outbox applies the change at once.
func (s *Service) changed(ctx context.Context) {
	if err := s.refresh(context.WithoutCancel(ctx)); err != nil {
		s.opts.Logger.Warn("webhook endpoints not refreshed", "error", err.Error())
	}
}

func notFound(id int64) error { return apperr.E(apperr.NotFound, "webhook %d does not exist", id) }

// dbError wraps a database failure with context.
func dbError(what string, err error) error {
	if _, ok := apperr.As(err); ok {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}
