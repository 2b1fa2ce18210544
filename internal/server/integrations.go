package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// credentialFields are each provider's write-only credential fields, in the order of
// api.md §7.15; an integration needs all of them before it can be enabled.
var credentialFields = map[string][]string{
	providerRevenueCat:      {"api_key"},
	providerAppleSearchAds:  {"client_id", "team_id", "key_id", "org_id", "private_key_pem"},
	providerAppStoreConnect: {"issuer_id", "key_id", "private_key_p8"},
}

// integration is one project_integrations row as api.md §7.15 shows it. Only the stored
// public view goes out — masked hints and the public key — so no code path here can
// echo a credential.
type integration struct {
	ID            string            `json:"id"`
	ProjectID     string            `json:"project_id"`
	Provider      string            `json:"provider"`
	Config        map[string]string `json:"config"`
	Enabled       bool              `json:"enabled"`
	MissingFields []string          `json:"missing_fields"`
	CreatedAt     apitype.Time      `json:"created_at"`
	UpdatedAt     apitype.Time      `json:"updated_at"`
}

// listIntegrations is GET /v1/projects/:projectId/integrations (api.md §7.15): the
// project's integrations that are not removed, enabled or not, ordered by provider.
func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request, p *principal) error {
	projectID, ok := jobtype.ParseUUID(r.PathValue("projectId"))
	if !ok {
		return invalidUUID("projectId")
	}
	ctx := r.Context()
	teamID, err := s.projectTeam(ctx, projectID)
	if err != nil {
		return err
	}
	if !p.sees(teamID) {
		return errorf(http.StatusNotFound, msgProjectNotFound)
	}
	if err := p.requireAdmin(teamID); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, project_id, provider, config, enabled, created_at, updated_at
		FROM project_integrations WHERE project_id = $1 AND deleted_at IS NULL ORDER BY provider`, projectID)
	if err != nil {
		return err
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (integration, error) {
		var (
			in         integration
			config     []byte
			created, u time.Time
		)
		if err := row.Scan(&in.ID, &in.ProjectID, &in.Provider, &config, &in.Enabled, &created, &u); err != nil {
			return in, err
		}
		in.Config = publicView(config)
		in.MissingFields = missingFields(in.Provider, in.Config)
		in.CreatedAt, in.UpdatedAt = apitype.Time{Time: created}, apitype.Time{Time: u}
		return in, nil
	})
	if err != nil {
		return err
	}
	if list == nil {
		list = []integration{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": list})
	return nil
}

// publicView reads the stored config: a string map. Anything else stored there by
// another tool is left out rather than guessed at.
func publicView(raw []byte) map[string]string {
	out := map[string]string{}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return out
	}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// missingFields lists the credential fields the public view shows no hint for, in the
// provider's order.
func missingFields(provider string, config map[string]string) []string {
	missing := []string{}
	for _, f := range credentialFields[provider] {
		if _, ok := config[f]; !ok {
			missing = append(missing, f)
		}
	}
	return missing
}
