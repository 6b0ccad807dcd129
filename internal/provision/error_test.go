package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/scimflow/scimflow/internal/auth"
)

func TestClassForStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status   int
		scimType string
		want     Class
	}{
		{408, "", ClassRetryable}, {429, "", ClassRetryable}, {500, "", ClassRetryable}, {502, "", ClassRetryable},
		{503, "", ClassRetryable}, {504, "", ClassRetryable},
		{409, "uniqueness", ClassConflict}, {409, "", ClassConflict}, {400, "uniqueness", ClassConflict}, {412, "", ClassConflict},
		{404, "", ClassNotFound}, {410, "", ClassNotFound},
		{400, "invalidFilter", ClassPermanent}, {400, "mutability", ClassPermanent}, {403, "", ClassPermanent},
		{413, "", ClassPermanent}, {501, "", ClassPermanent}, {505, "", ClassPermanent},
		{401, "", ClassConfig}, {301, "", ClassConfig}, {307, "", ClassConfig},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, classForStatus(tt.status, tt.scimType), "%d %s", tt.status, tt.scimType)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {" 120 ", 2 * time.Minute}, {"0", 0}, {"-5", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Mon, 23 Nov 2026 12:00:30 GMT", 30 * time.Second},
		{"999999999", 24 * time.Hour},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, parseRetryAfter(tt.v, now), tt.v)
	}
}

func TestClassOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want Class
	}{
		{nil, ClassNone},
		{&Error{Class: ClassConflict}, ClassConflict},
		{fmt.Errorf("update user: %w", &Error{Class: ClassNotFound}), ClassNotFound},
		{context.DeadlineExceeded, ClassRetryable},
		{context.Canceled, ClassRetryable},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, ClassRetryable},
		{&auth.TokenError{Status: 401, Code: "invalid_client"}, ClassConfig},
		{&auth.TokenError{Status: 503}, ClassRetryable},
		{errors.New("something odd"), ClassPermanent},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ClassOf(tt.err), "%v", tt.err)
	}
	assert.Equal(t, "not_found", ClassNotFound.String())
	assert.Equal(t, "class(42)", Class(42).String())
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	e := &Error{Class: ClassConflict, Status: 409, ScimType: "uniqueness", Detail: "userName taken", Method: "POST", Path: "Users"}
	assert.Equal(t, "POST Users: HTTP 409 uniqueness: userName taken [conflict]", e.Error())
	e = &Error{Class: ClassRetryable, BreakerOpen: true, Method: "GET", Path: "Users", RetryAfter: 1500 * time.Millisecond}
	assert.Equal(t, "GET Users: not sent: circuit breaker open (retry after 1.5s) [retryable]", e.Error())
	inner := errors.New("boom")
	e = &Error{Class: ClassRetryable, Method: "GET", Path: "Users", Err: inner}
	assert.Equal(t, "GET Users: boom [retryable]", e.Error())
	assert.ErrorIs(t, e, inner)
}
