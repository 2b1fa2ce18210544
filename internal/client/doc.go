// Package client is the Owlmetry HTTP API as a Go SDK, built on resty.
//
// Methods are named noun first (JobRunList, JobRunGet, JobRunTrigger, JobRunCancel,
// JobRunEvents, AdsSync, RatingsSync, IntegrationSync, IntegrationUserSync,
// IntegrationList, AuthWhoAmI) and take and return the wire types of apitype, which keep
// the bytes they were decoded from so JSON output can re-emit unknown fields.
//
// Requests go to the endpoint plus /v1/…, keeping any path prefix of the endpoint.
// Body-less POSTs send neither a body nor a Content-Type. Retries follow cli.md §2.8:
// GETs on network errors, 429 and 502–504; writes only on a 429 with a short
// Retry-After or a connection that failed before anything was sent. Failures come back as
// *APIError (with the whole error envelope; a 409 also unwraps to
// *apitype.ConflictError) or *NetworkError; the client never prints or prompts.
//
// RunSource follows runs to their end for the follow package: the run's event stream,
// reopened with backoff when it ends early or falls silent, and polling when the server
// has no stream.
package client
