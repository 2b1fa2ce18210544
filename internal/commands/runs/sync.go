package runs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// Provider is an integration provider and the bulk sync it starts (cli.md §8.4).
type Provider struct {
	// ID is the provider id used in routes and on the command line.
	ID string
	// Name is the display name.
	Name string
	// JobType is the job the bulk sync starts.
	JobType string
	// Unit is what the bulk sync counts.
	Unit string
	// NothingReason explains a zero-work answer.
	NothingReason string
	// UserSync is true when the provider has a per-user sync.
	UserSync bool
}

// Providers are the three integration providers, in the order help lists them.
var Providers = []Provider{
	{ID: "revenuecat", Name: "RevenueCat", JobType: jobtype.RevenueCatSync, Unit: "user(s)", NothingReason: "the project has no identified users", UserSync: true},
	{ID: "apple-search-ads", Name: "Apple Search Ads", JobType: jobtype.AppleAdsSync, Unit: "user(s)", NothingReason: "the project has no users", UserSync: true},
	{ID: "app-store-connect", Name: "App Store Connect", JobType: jobtype.AppStoreConnectReviewsSync, Unit: "app(s)", NothingReason: "no Apple app has an App Store id"},
}

// ProviderIDs lists the provider ids.
func ProviderIDs() []string {
	out := make([]string, len(Providers))
	for i, p := range Providers {
		out[i] = p.ID
	}
	return out
}

// ParseProvider checks a provider argument; anything else is exit 2 listing them.
func ParseProvider(v string) (Provider, error) {
	for _, p := range Providers {
		if p.ID == v {
			return p, nil
		}
	}
	return Provider{}, cmdutil.FlagErrorf("invalid provider %q: valid providers are %s", v, strings.Join(ProviderIDs(), ", "))
}

// ProviderOf returns the provider whose bulk sync starts jobType.
func ProviderOf(jobType string) (Provider, bool) {
	for _, p := range Providers {
		if p.JobType == jobType {
			return p, true
		}
	}
	return Provider{}, false
}

// SyncSpec is one run-creating sync route.
type SyncSpec struct {
	// JobType is the job the route starts.
	JobType string
	// Unit is what the answer's total counts.
	Unit string
	// NothingReason explains a zero-work answer.
	NothingReason string
	// Start calls the route.
	Start func(ctx context.Context, c *client.Client, projectID string) (apitype.SyncResponse, error)
}

// SyncOptions are what every single-run sync command (ratings sync, integrations sync)
// has parsed.
type SyncOptions struct {
	IO        *iostreams.IOStreams
	APIClient func() (*client.Client, error)
	Printer   func() (*cmdutil.Printer, error)
	Follow    cmdutil.FollowFunc
	NowFunc   func() time.Time

	ProjectID string
	Attach    bool
	Wait      cmdutil.WaitOptions
}

// NotFoundHint is the hint of a 404 from a sync route (cli.md §8.1).
const NotFoundHint = "check owlmetry integrations list"

// RunSync starts a sync that creates at most one run and presents it (cli.md §8.1):
// the started run, "nothing to sync", or with --attach the run that was already active;
// with --wait it follows the run and prints its final state.
func RunSync(ctx context.Context, o *SyncOptions, spec SyncSpec) error {
	p, err := o.Printer()
	if err != nil {
		return err
	}
	c, err := o.APIClient()
	if err != nil {
		return err
	}
	resp, err := spec.Start(ctx, c, o.ProjectID)
	doc := resp.Raw
	var conflict *apitype.ConflictError
	switch {
	case err == nil:
	case errors.As(err, &conflict) && o.Attach && conflict.ExistingRunID != "":
		if _, err := Attach(ctx, c, o.IO, p.Format, o.NowFunc(), conflict.ExistingRunID); err != nil {
			return err
		}
		id := conflict.ExistingRunID
		yes := true
		resp = apitype.SyncResponse{Syncing: &yes, JobRunID: &id}
		if doc, err = json.Marshal(map[string]any{"syncing": true, "attached": true, "job_run_id": id}); err != nil {
			return err
		}
	case client.IsNotFound(err):
		return cmdutil.WithHint(err, NotFoundHint)
	default:
		return err
	}

	if !resp.Started() || resp.JobRunID == nil {
		cmdutil.Notef(o.IO, p.Format, "Nothing to sync: %s", spec.NothingReason)
		if o.Wait.Enabled {
			if doc, err = WithKey(doc, "job_runs", []apitype.JobRun{}); err != nil {
				return err
			}
		}
		return p.Print(json.RawMessage(doc), nil)
	}
	id := *resp.JobRunID
	if !o.Wait.Enabled {
		if err := p.Print(json.RawMessage(doc), syncStarted(spec, resp, id)); err != nil {
			return err
		}
		cmdutil.Hintf(o.IO, p.Format, "%s", FollowHint(id))
		return nil
	}
	fr, err := o.Follow(ctx, []string{id}, o.Wait)
	if err != nil {
		return err
	}
	if doc, err = WithKey(doc, "job_runs", fr.Runs); err != nil {
		return err
	}
	if err := p.Print(json.RawMessage(doc), RunDetails(fr.Runs...)); err != nil {
		return err
	}
	return fr.Err()
}

func syncStarted(spec SyncSpec, resp apitype.SyncResponse, id string) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			return id + "\t" + spec.JobType
		}
		if resp.Total != nil {
			return fmt.Sprintf("Started %s for %d %s: run %s", spec.JobType, *resp.Total, spec.Unit, id)
		}
		return fmt.Sprintf("Started %s: run %s", spec.JobType, id)
	}
}

// ShortProject is a project id for sentences.
func ShortProject(id string) string { return tui.ShortID(id) }
