// Package config owns ~/.owlmetry/config.json and the resolution of settings.
//
// The file is shared with the public Owlmetry CLI, so File decodes the keys both know
// (endpoint, ingest_endpoint, active_team, teams and their profiles) into typed fields
// and keeps every other key verbatim: a rewrite never drops what another tool wrote.
// Update is the only writer. It takes an exclusive lock on <path>.lock, re-reads the file
// under the lock, applies the change and replaces the file atomically with mode 0600,
// following a symlink to the file it points to.
//
// Resolver answers "which endpoint, key, team, project and format does this invocation
// use, and where did each come from?" with a fresh viper instance per invocation:
// flags beat the environment, which beats the file. The rules viper cannot express —
// a key from outside the file borrows nothing from a profile, filters take no defaults,
// ids are checked before any request — are plain Go here, each with a test.
package config
