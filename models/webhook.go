package models

import "time"

// WebhookEndpoint is a URL that admins registered to hear about booking
// events. Events holds the event types it wants, comma-separated; Secret
// is the signing secret (whsec_…), kept as handed out once, since the
// server signs every delivery with it.
type WebhookEndpoint struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	URL         string    `gorm:"column:url" json:"url"`
	Description string    `json:"description"`
	Events      string    `json:"-"`
	Secret      string    `json:"-"`
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// WebhookDeliveryStatus is where a delivery stands after its latest
// attempt.
type WebhookDeliveryStatus string

// The statuses of a delivery.
const (
	WebhookDelivered WebhookDeliveryStatus = "delivered" // a 2xx answer
	WebhookRetrying  WebhookDeliveryStatus = "retrying"  // failed; another attempt is scheduled
	WebhookFailed    WebhookDeliveryStatus = "failed"    // failed at the last attempt: no more
)

// WebhookDelivery is the latest state of one event's delivery to one
// endpoint, updated at every attempt.
type WebhookDelivery struct {
	ID            int64                 `gorm:"primaryKey" json:"-"`
	EndpointID    int64                 `json:"endpointId"`
	EventID       string                `json:"eventId"`
	EventType     string                `json:"type"`
	JobID         int64                 `json:"-"`
	Status        WebhookDeliveryStatus `json:"status"`
	Attempt       int                   `json:"attempt"`
	ResponseCode  *int                  `json:"responseCode"`
	Error         string                `json:"error"`
	ResponseBody  string                `json:"responseBody"`
	NextAttemptAt *time.Time            `json:"nextAttemptAt"`
	CreatedAt     time.Time             `json:"createdAt"`
	UpdatedAt     time.Time             `json:"updatedAt"`
}
