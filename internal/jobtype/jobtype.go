// Package jobtype is the compiled-in registry of owlmetry's 13 job types (engine.md §2).
//
// Everything that needs to know about job types — the engine, the API validation
// messages, the scheduler, the CLI's `jobs types`, completion and flag validation —
// reads the table in this package, so no second list of job types exists anywhere.
package jobtype

import (
	"fmt"
	"strings"
	"time"
)

// The 13 job type ids. They are also the River job kinds.
const (
	RetentionCleanup           = "retention_cleanup"
	DBPruning                  = "db_pruning"
	SoftDeleteCleanup          = "soft_delete_cleanup"
	PartitionCreation          = "partition_creation"
	AttachmentCleanup          = "attachment_cleanup"
	IssueScan                  = "issue_scan"
	IssueNotify                = "issue_notify"
	AppVersionSync             = "app_version_sync"
	AppStoreRatingsSync        = "app_store_ratings_sync"
	AppleAdsSync               = "apple_ads_sync"
	AppStoreConnectReviewsSync = "app_store_connect_reviews_sync"
	RevenueCatSync             = "revenuecat_sync"
	RevenueCatUserBackfill     = "revenuecat_user_backfill"
)

// Scope decides only whether the generic trigger endpoint accepts a type (engine.md §2.1).
type Scope string

// The two scopes.
const (
	ScopeSystem  Scope = "system"
	ScopeProject Scope = "project"
)

// EntryPoint is how a run is created (engine.md §2.4). Route entry points are
// distinguished per route because each route allows different params.
type EntryPoint string

// The entry points of engine.md §2.2.
const (
	EntryCron         EntryPoint = "cron"
	EntryTrigger      EntryPoint = "trigger"
	EntryCLI          EntryPoint = "cli"
	EntryRouteAds     EntryPoint = "route_ads"
	EntryRouteRatings EntryPoint = "route_ratings"
	EntryRouteASC     EntryPoint = "route_asc"
	EntryRouteRC      EntryPoint = "route_rc"
	EntryRouteASA     EntryPoint = "route_asa"
)

// IsRoute reports whether e is one of the project sync routes.
func (e EntryPoint) IsRoute() bool {
	return strings.HasPrefix(string(e), "route_")
}

// Label is the entry point as written in logs and metrics: every route is "route".
func (e EntryPoint) Label() string {
	if e.IsRoute() {
		return "route"
	}
	return string(e)
}

// ParamType is the declared type of a param (engine.md §2.3).
type ParamType string

// The declared param types.
const (
	ParamUUID    ParamType = "uuid"
	ParamInteger ParamType = "integer"
	ParamString  ParamType = "string"
)

// Param is one declared param of a job type.
type Param struct {
	// Name is the params key.
	Name string
	// Type is its declared type.
	Type ParamType
	// Required makes the param mandatory at every entry point that allows it.
	Required bool
	// EntryPoints lists where the param may be set.
	EntryPoints []EntryPoint
}

// AllowedAt reports whether the param may be set at entry point e.
func (p Param) AllowedAt(e EntryPoint) bool {
	for _, x := range p.EntryPoints {
		if x == e {
			return true
		}
	}
	return false
}

// Type is one registry entry (engine.md §2.1).
type Type struct {
	// Name is the stable snake_case id, also the River kind.
	Name string
	// Label is the human name used in e-mails, notifications and CLI tables.
	Label string
	// Scope is system or project.
	Scope Scope
	// Cron is the default schedule under the prod cron profile: a 5-field UTC expression,
	// or "" for a Manual type.
	Cron string
	// DevCron is the default schedule under the dev cron profile ("" for none).
	DevCron string
	// Params are the declared params.
	Params []Param
	// EntryPoints lists the entry points that may create runs of the type, cron aside:
	// any type with an effective schedule may also be created by cron (engine.md §10.1).
	EntryPoints []EntryPoint
	// MaxRunTime is the default hard limit of one run (engine.md §6.5).
	MaxRunTime time.Duration
	// FanOut marks types whose runs without project_id visit every eligible project.
	FanOut bool
	// Schedulable is false only for revenuecat_user_backfill, which needs a project.
	Schedulable bool
	// StartWith lists the CLI commands that start the type (cli.md Appendix A).
	StartWith []string
}

// APITriggerable reports whether the generic trigger endpoint accepts the type.
func (t Type) APITriggerable() bool { return t.Scope == ScopeProject }

// Param returns the declared param called name.
func (t Type) Param(name string) (Param, bool) {
	for _, p := range t.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ParamsAt returns the params allowed at entry point e, in declaration order.
func (t Type) ParamsAt(e EntryPoint) []Param {
	var out []Param
	for _, p := range t.Params {
		if p.AllowedAt(e) {
			out = append(out, p)
		}
	}
	return out
}

// AllowsEntry reports whether entry point e may create runs of the type. Cron is allowed
// for every schedulable type; whether a schedule exists is the scheduler's business.
func (t Type) AllowsEntry(e EntryPoint) bool {
	if e == EntryCron {
		return t.Schedulable
	}
	for _, x := range t.EntryPoints {
		if x == e {
			return true
		}
	}
	return false
}

// DefaultCron returns the default schedule under a cron profile ("prod", "dev" or "off").
// "" means no default.
func (t Type) DefaultCron(profile string) string {
	switch profile {
	case "dev":
		return t.DevCron
	case "off":
		return ""
	default:
		return t.Cron
	}
}

func ep(e ...EntryPoint) []EntryPoint { return e }

var registry = []Type{
	{
		Name: RetentionCleanup, Label: "Data Retention Cleanup", Scope: ScopeSystem,
		Cron: "0 2 * * *", DevCron: "*/5 * * * *",
		EntryPoints: ep(EntryCLI), MaxRunTime: 2 * time.Hour, Schedulable: true,
		StartWith: []string{"system jobs run"},
	},
	{
		Name: DBPruning, Label: "Database Pruning", Scope: ScopeSystem,
		Cron: "0 * * * *", DevCron: "* * * * *",
		Params:      []Param{{Name: "max_size_bytes", Type: ParamInteger, EntryPoints: ep(EntryCron, EntryCLI)}},
		EntryPoints: ep(EntryCLI), MaxRunTime: time.Hour, Schedulable: true,
		StartWith: []string{"system jobs run"},
	},
	{
		Name: SoftDeleteCleanup, Label: "Soft-Delete Cleanup", Scope: ScopeSystem,
		Cron: "0 3 * * *", DevCron: "*/5 * * * *",
		EntryPoints: ep(EntryCLI), MaxRunTime: 2 * time.Hour, Schedulable: true,
		StartWith: []string{"system jobs run"},
	},
	{
		Name: PartitionCreation, Label: "Partition Creation", Scope: ScopeSystem,
		Cron: "0 4 * * *", DevCron: "*/5 * * * *",
		EntryPoints: ep(EntryCLI), MaxRunTime: 15 * time.Minute, Schedulable: true,
		StartWith: []string{"system jobs run"},
	},
	{
		Name: AttachmentCleanup, Label: "Attachment Cleanup", Scope: ScopeSystem,
		Cron: "0 5 * * *", DevCron: "*/5 * * * *",
		EntryPoints: ep(EntryCLI), MaxRunTime: 2 * time.Hour, Schedulable: true,
		StartWith: []string{"system jobs run"},
	},
	{
		Name: IssueScan, Label: "Issue Scan", Scope: ScopeSystem,
		Cron: "0 * * * *", DevCron: "*/5 * * * *",
		EntryPoints: ep(EntryCLI), MaxRunTime: 55 * time.Minute, Schedulable: true,
		StartWith: []string{"system jobs run"},
	},
	{
		Name: IssueNotify, Label: "Issue Notify", Scope: ScopeSystem,
		Cron: "5 * * * *", DevCron: "*/5 * * * *",
		EntryPoints: ep(EntryCLI), MaxRunTime: 30 * time.Minute, Schedulable: true,
		StartWith: []string{"system jobs run"},
	},
	{
		Name: AppVersionSync, Label: "App Version Sync", Scope: ScopeSystem,
		Cron: "15 * * * *", DevCron: "*/5 * * * *",
		Params:      []Param{{Name: "app_id", Type: ParamUUID, EntryPoints: ep(EntryCLI)}},
		EntryPoints: ep(EntryCLI), MaxRunTime: 55 * time.Minute, Schedulable: true,
		StartWith: []string{"system jobs run"},
	},
	{
		Name: AppStoreRatingsSync, Label: "App Store Ratings Sync", Scope: ScopeSystem,
		Cron: "30 4 * * *", DevCron: "*/30 * * * *",
		Params: []Param{
			{Name: "app_id", Type: ParamUUID, EntryPoints: ep(EntryCLI)},
			{Name: "project_id", Type: ParamUUID, EntryPoints: ep(EntryRouteRatings, EntryCLI)},
		},
		EntryPoints: ep(EntryRouteRatings, EntryCLI), MaxRunTime: 12 * time.Hour, Schedulable: true,
		StartWith: []string{"ratings sync", "system jobs run"},
	},
	{
		Name: AppleAdsSync, Label: "Apple Ads Sync", Scope: ScopeProject,
		Cron: "45 4 * * *", DevCron: "*/30 * * * *",
		Params: []Param{
			{Name: "project_id", Type: ParamUUID, EntryPoints: ep(EntryTrigger, EntryRouteAds, EntryRouteASA, EntryCLI)},
		},
		EntryPoints: ep(EntryTrigger, EntryRouteAds, EntryRouteASA, EntryCLI), MaxRunTime: 6 * time.Hour,
		FanOut: true, Schedulable: true,
		StartWith: []string{"jobs trigger", "ads sync", "integrations sync apple-search-ads", "system jobs run"},
	},
	{
		Name: AppStoreConnectReviewsSync, Label: "App Store Connect Reviews Sync", Scope: ScopeSystem,
		Cron: "30 5 * * *", DevCron: "*/30 * * * *",
		Params: []Param{
			{Name: "project_id", Type: ParamUUID, EntryPoints: ep(EntryRouteASC, EntryCLI)},
		},
		EntryPoints: ep(EntryRouteASC, EntryCLI), MaxRunTime: 6 * time.Hour, FanOut: true, Schedulable: true,
		StartWith: []string{"integrations sync app-store-connect", "system jobs run"},
	},
	{
		Name: RevenueCatSync, Label: "RevenueCat Sync", Scope: ScopeProject,
		Params: []Param{
			{Name: "project_id", Type: ParamUUID, EntryPoints: ep(EntryTrigger, EntryRouteRC, EntryRouteAds, EntryCLI)},
		},
		EntryPoints: ep(EntryTrigger, EntryRouteRC, EntryRouteAds, EntryCLI), MaxRunTime: 12 * time.Hour,
		FanOut: true, Schedulable: true,
		StartWith: []string{"jobs trigger", "ads sync", "integrations sync revenuecat", "system jobs run"},
	},
	{
		Name: RevenueCatUserBackfill, Label: "RevenueCat User Backfill", Scope: ScopeProject,
		Params: []Param{
			{Name: "project_id", Type: ParamUUID, Required: true, EntryPoints: ep(EntryTrigger, EntryCLI)},
			{Name: "starting_after", Type: ParamString, EntryPoints: ep(EntryTrigger, EntryCLI)},
		},
		EntryPoints: ep(EntryTrigger, EntryCLI), MaxRunTime: 48 * time.Hour,
		StartWith: []string{"jobs trigger", "system jobs run"},
	},
}

// All returns every registered type in registry order. The slice is a copy.
func All() []Type {
	out := make([]Type, len(registry))
	copy(out, registry)
	return out
}

// Names returns the 13 type ids in registry order.
func Names() []string {
	out := make([]string, len(registry))
	for i, t := range registry {
		out[i] = t.Name
	}
	return out
}

// Lookup returns the type called name.
func Lookup(name string) (Type, bool) {
	for _, t := range registry {
		if t.Name == name {
			return t, true
		}
	}
	return Type{}, false
}

// MustLookup returns the type called name and panics for an unknown name. It is for
// compile-time constants only, never for input.
func MustLookup(name string) Type {
	t, ok := Lookup(name)
	if !ok {
		panic(fmt.Sprintf("jobtype: unknown job type %q", name))
	}
	return t
}

// LabelOf returns the label of a type, or the raw name when the type is unknown.
func LabelOf(name string) string {
	if t, ok := Lookup(name); ok {
		return t.Label
	}
	return name
}

// InvalidTypeMessage is the API's 400 message for an unknown job type (api.md §2.4).
func InvalidTypeMessage(v string) string {
	return fmt.Sprintf("Invalid job_type %q. Valid types: %s", v, strings.Join(Names(), ", "))
}
