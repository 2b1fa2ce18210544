package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

// TestAccessMatrix walks api.md §4.2 for every route and every kind of caller.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.RevenueCatUserBackfill))
	team := stack.Team
	project := stack.SeedProject(t)
	run := insertRun(t, stack, seedRun{teamID: &team.ID, projectID: &project.ID, status: "completed"})

	type kind int
	const (
		teamPath kind = iota
		runPath
		projectPath
		anyCaller
	)
	type endpoint struct {
		method, path, body, perm string
		kind                     kind
		// ok tells an answer that passed authorization from one that did not.
		ok func(r response) bool
	}
	status := func(codes ...int) func(response) bool {
		return func(r response) bool {
			for _, c := range codes {
				if r.Status == c {
					return true
				}
			}
			return false
		}
	}
	integration404 := func(r response) bool {
		return r.Status == http.StatusNotFound && r.Body != nil && string(r.Body) != "" &&
			r.JSON(t)["error"] != "Project not found"
	}
	trigger := fmt.Sprintf(`{"job_type":"revenuecat_user_backfill","project_id":%q}`, project.ID)
	endpoints := []endpoint{
		{method: "GET", path: "/v1/teams/" + team.ID + "/jobs", perm: "jobs:read", kind: teamPath, ok: status(200)},
		{method: "POST", path: "/v1/teams/" + team.ID + "/jobs/trigger", body: trigger, perm: "jobs:write", kind: teamPath, ok: status(201, 409)},
		{method: "GET", path: "/v1/jobs/" + run, perm: "jobs:read", kind: runPath, ok: status(200)},
		{method: "GET", path: "/v1/jobs/" + run + "/events", perm: "jobs:read", kind: runPath, ok: status(200)},
		{method: "POST", path: "/v1/jobs/" + run + "/cancel", perm: "jobs:write", kind: runPath, ok: status(400)},
		{method: "POST", path: "/v1/projects/" + project.ID + "/ads/sync", perm: "jobs:write", kind: projectPath, ok: status(200)},
		{method: "POST", path: "/v1/projects/" + project.ID + "/ratings/sync", perm: "jobs:write", kind: projectPath, ok: status(200)},
		{method: "POST", path: "/v1/projects/" + project.ID + "/integrations/app-store-connect/sync", perm: "jobs:write", kind: projectPath, ok: integration404},
		{method: "POST", path: "/v1/projects/" + project.ID + "/integrations/revenuecat/sync", perm: "jobs:write", kind: projectPath, ok: integration404},
		{method: "POST", path: "/v1/projects/" + project.ID + "/integrations/apple-search-ads/sync", perm: "jobs:write", kind: projectPath, ok: integration404},
		{method: "GET", path: "/v1/auth/whoami", kind: anyCaller, ok: status(200)},
	}

	other := stack.SeedTeam(t)
	type caller struct {
		name   string
		token  string
		perms  map[string]bool // for keys: what it holds; nil for users
		role   string          // for users: role in team, "" = none
		sees   bool            // has access to team
		client bool
	}
	keyPerms := func(ps ...string) map[string]bool {
		m := map[string]bool{}
		for _, p := range ps {
			m[p] = true
		}
		return m
	}
	outsider := stack.SeedUser(t, other, owltest.RoleAdmin)
	callers := []caller{
		{name: "owner", token: stack.SeedUser(t, team, owltest.RoleOwner).Token, role: "owner", sees: true},
		{name: "admin", token: stack.SeedUser(t, team, owltest.RoleAdmin).Token, role: "admin", sees: true},
		{name: "member", token: stack.SeedUser(t, team, owltest.RoleMember).Token, role: "member", sees: true},
		{name: "admin of another team", token: outsider.Token, role: "", sees: false},
		{name: "key read+write", token: stack.SeedKey(t, team, []string{"jobs:read", "jobs:write"}).Token, perms: keyPerms("jobs:read", "jobs:write"), sees: true},
		{name: "key read", token: stack.SeedKey(t, team, []string{"jobs:read"}).Token, perms: keyPerms("jobs:read"), sees: true},
		{name: "key write", token: stack.SeedKey(t, team, []string{"jobs:write"}).Token, perms: keyPerms("jobs:write"), sees: true},
		{name: "key without permissions", token: stack.SeedKey(t, team, []string{"integrations:read", "users:write"}).Token, perms: keyPerms(), sees: true},
		{name: "client key", token: stack.SeedKey(t, team, []string{"jobs:read", "jobs:write"}, owltest.KeyType("client")).Token, perms: keyPerms(), sees: true, client: true},
		{name: "import key", token: stack.SeedKey(t, team, []string{"jobs:read", "jobs:write"}, owltest.KeyType("import")).Token, perms: keyPerms(), sees: true},
		{name: "key of another team", token: stack.SeedKey(t, other, []string{"jobs:read", "jobs:write"}).Token, perms: keyPerms("jobs:read", "jobs:write"), sees: false},
	}

	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, ep := range endpoints {
				r := call(t, stack, req{method: ep.method, path: ep.path, token: c.token, body: ep.body})
				what := ep.method + " " + ep.path
				switch {
				case ep.kind == anyCaller:
					require.True(t, ep.ok(r), "%s: %d %s", what, r.Status, r.Body)
				case c.perms != nil && !c.perms[ep.perm]:
					requireError(t, r, http.StatusForbidden, "Missing permission: "+ep.perm)
				case !c.sees && ep.kind == teamPath:
					requireError(t, r, http.StatusForbidden, "Not a member of this team")
				case !c.sees && ep.kind == runPath:
					requireError(t, r, http.StatusNotFound, "Job run not found")
				case !c.sees && ep.kind == projectPath:
					requireError(t, r, http.StatusNotFound, "Project not found")
				case c.perms == nil && c.role == "member":
					requireError(t, r, http.StatusForbidden, "Requires admin role or higher")
				default:
					require.True(t, ep.ok(r), "%s: %d %s", what, r.Status, r.Body)
				}
			}
		})
	}

	t.Run("check order", func(t *testing.T) {
		t.Parallel()
		member := stack.SeedUser(t, team, owltest.RoleMember)
		readOnly := stack.SeedKey(t, team, []string{"jobs:read"})
		// A missing permission comes before a malformed id (§4.3 steps 3 and 4).
		requireError(t, post(t, stack, "/v1/teams/nope/jobs/trigger", readOnly.Token, "{"), http.StatusForbidden, "Missing permission: jobs:write")
		// A malformed id comes before membership and role (steps 4, 5 and 6).
		requireError(t, get(t, stack, "/v1/teams/nope/jobs", member.Token), http.StatusBadRequest, "Invalid teamId: must be a UUID")
		requireError(t, get(t, stack, "/v1/teams/nope/jobs", outsider.Token), http.StatusBadRequest, "Invalid teamId: must be a UUID")
		requireError(t, get(t, stack, "/v1/jobs/nope", member.Token), http.StatusBadRequest, "Invalid runId: must be a UUID")
		requireError(t, post(t, stack, "/v1/projects/nope/ads/sync", member.Token, ""), http.StatusBadRequest, "Invalid projectId: must be a UUID")
		// Query syntax comes before membership too.
		requireError(t, get(t, stack, "/v1/teams/"+team.ID+"/jobs?status=done", outsider.Token), http.StatusBadRequest,
			`Invalid status "done". Valid statuses: pending, running, completed, failed, cancelled`)
		// Body size and type come before membership; body content after role.
		requireError(t, call(t, stack, req{method: "POST", path: "/v1/teams/" + team.ID + "/jobs/trigger", token: outsider.Token,
			body: "{}", contentType: "text/plain"}), http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		requireError(t, post(t, stack, "/v1/teams/"+team.ID+"/jobs/trigger", outsider.Token, "{"), http.StatusForbidden, "Not a member of this team")
		requireError(t, post(t, stack, "/v1/teams/"+team.ID+"/jobs/trigger", member.Token, "{"), http.StatusForbidden, "Requires admin role or higher")
		// A team the caller cannot see is a 403 whether or not it exists.
		requireError(t, get(t, stack, "/v1/teams/"+other.ID+"/jobs", stack.Key.Token), http.StatusForbidden, "Not a member of this team")
		requireError(t, get(t, stack, "/v1/teams/00000000-0000-4000-8000-000000000000/jobs", stack.Key.Token), http.StatusForbidden, "Not a member of this team")
	})
}
