-- The owlmetry schema (schema.md): enum types, tenancy, engine tables, event data,
-- issues, integrations and store data, notifications, the companion tables swept by
-- soft_delete_cleanup, the three partitioned event parents, and the job_runs trigger.
-- Event partitions are created after the migrations by the shared partition routine.

-- §2 enum types
CREATE TYPE team_role AS ENUM ('owner', 'admin', 'member');
CREATE TYPE api_key_type AS ENUM ('client', 'agent', 'server', 'import');
CREATE TYPE app_platform AS ENUM ('apple', 'android', 'web', 'backend');
CREATE TYPE environment AS ENUM ('ios', 'ipados', 'macos', 'watchos', 'android', 'web', 'backend');
CREATE TYPE log_level AS ENUM ('info', 'debug', 'warn', 'error');
CREATE TYPE metric_phase AS ENUM ('start', 'complete', 'fail', 'cancel', 'record');
CREATE TYPE job_status AS ENUM ('pending', 'running', 'completed', 'failed', 'cancelled');
CREATE TYPE issue_status AS ENUM ('new', 'in_progress', 'resolved', 'silenced', 'regressed', 'snoozed');
CREATE TYPE issue_alert_frequency AS ENUM ('none', 'hourly', '6_hourly', 'daily', 'weekly');
CREATE TYPE feedback_status AS ENUM ('new', 'in_review', 'addressed', 'dismissed');
CREATE TYPE questionnaire_response_status AS ENUM ('draft', 'new', 'in_review', 'addressed', 'dismissed');
CREATE TYPE audit_actor_type AS ENUM ('user', 'api_key', 'system');
CREATE TYPE audit_action AS ENUM ('create', 'update', 'delete');

-- §3 tenancy and identity
CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       varchar(255) NOT NULL,
    name        varchar(255) NOT NULL,
    preferences jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_unique UNIQUE (email)
);

CREATE TABLE teams (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       varchar(255) NOT NULL,
    slug       varchar(255) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT teams_slug_unique UNIQUE (slug)
);

CREATE TABLE team_members (
    team_id   uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      team_role NOT NULL DEFAULT 'member',
    joined_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX team_members_team_user_idx ON team_members (team_id, user_id);
CREATE INDEX team_members_user_id_idx ON team_members (user_id);

CREATE TABLE projects (
    id                              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id                         uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name                            varchar(255) NOT NULL,
    slug                            varchar(255) NOT NULL,
    color                           varchar(7) NOT NULL,
    retention_days_events           integer,
    retention_days_metrics          integer,
    retention_days_funnels          integer,
    attachment_user_quota_bytes     bigint,
    attachment_project_quota_bytes  bigint,
    issue_alert_frequency           issue_alert_frequency DEFAULT 'daily',
    issue_digest_sent_at            timestamptz,
    created_at                      timestamptz NOT NULL DEFAULT now(),
    deleted_at                      timestamptz,
    CONSTRAINT projects_retention_chk CHECK (
        (retention_days_events IS NULL OR retention_days_events BETWEEN 1 AND 3650) AND
        (retention_days_metrics IS NULL OR retention_days_metrics BETWEEN 1 AND 3650) AND
        (retention_days_funnels IS NULL OR retention_days_funnels BETWEEN 1 AND 3650))
);
CREATE INDEX projects_team_id_idx ON projects (team_id);
CREATE UNIQUE INDEX projects_team_slug_idx ON projects (team_id, slug);

CREATE TABLE apps (
    id                                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id                                 uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    project_id                              uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                                    varchar(255) NOT NULL,
    platform                                app_platform NOT NULL,
    bundle_id                               varchar(255),
    latest_app_version                      varchar(50),
    latest_app_version_updated_at           timestamptz,
    latest_app_version_source               varchar(20),
    apple_app_store_id                      bigint,
    worldwide_average_rating                numeric(3, 2),
    worldwide_rating_count                  integer,
    worldwide_current_version_rating        numeric(3, 2),
    worldwide_current_version_rating_count  integer,
    ratings_synced_at                       timestamptz,
    created_at                              timestamptz NOT NULL DEFAULT now(),
    deleted_at                              timestamptz
);
CREATE INDEX apps_team_id_idx ON apps (team_id);
CREATE INDEX apps_project_id_idx ON apps (project_id);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    secret       text NOT NULL,
    secret_hash  char(64) NOT NULL,
    key_type     api_key_type NOT NULL,
    app_id       uuid REFERENCES apps (id) ON DELETE CASCADE,
    team_id      uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name         varchar(255) NOT NULL,
    created_by   uuid NOT NULL REFERENCES users (id) ON DELETE NO ACTION,
    permissions  jsonb NOT NULL,
    last_used_at timestamptz,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE UNIQUE INDEX api_keys_secret_hash_idx ON api_keys (secret_hash);
CREATE INDEX api_keys_team_id_idx ON api_keys (team_id);
CREATE INDEX api_keys_app_id_idx ON api_keys (app_id);

CREATE TABLE app_users (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id              uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id                 varchar(255) NOT NULL,
    is_anonymous            boolean NOT NULL,
    claimed_from            jsonb,
    properties              jsonb,
    first_seen_at           timestamptz NOT NULL DEFAULT now(),
    last_seen_at            timestamptz NOT NULL DEFAULT now(),
    last_country_code       varchar(2),
    last_app_version        varchar(50),
    last_sdk_name           varchar(50),
    last_sdk_version        varchar(50),
    last_locale             varchar(20),
    last_preferred_language varchar(35),
    total_revenue_usd_cents bigint,
    revenue_synced_at       timestamptz,
    is_dev                  boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX app_users_project_user_idx ON app_users (project_id, user_id);
CREATE INDEX app_users_project_anonymous_idx ON app_users (project_id, is_anonymous);
CREATE INDEX app_users_project_last_seen_idx ON app_users (project_id, last_seen_at);
CREATE INDEX app_users_project_revenue_idx ON app_users (project_id, total_revenue_usd_cents)
    WHERE total_revenue_usd_cents IS NOT NULL;
CREATE INDEX app_users_project_is_dev_idx ON app_users (project_id, is_dev);
CREATE INDEX app_users_asa_campaign_idx ON app_users (project_id, id) WHERE properties ? 'asa_campaign_id';

CREATE TABLE app_user_apps (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_user_id   uuid NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    app_id        uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX app_user_apps_user_app_idx ON app_user_apps (app_user_id, app_id);
CREATE INDEX app_user_apps_app_id_idx ON app_user_apps (app_id);

-- §4 engine tables
CREATE TABLE job_runs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_type            varchar(100) NOT NULL,
    status              job_status NOT NULL DEFAULT 'pending',
    team_id             uuid REFERENCES teams (id) ON DELETE CASCADE,
    project_id          uuid REFERENCES projects (id) ON DELETE CASCADE,
    triggered_by        varchar(100) NOT NULL,
    params              jsonb,
    progress            jsonb,
    result              jsonb,
    error               text,
    notify              boolean NOT NULL DEFAULT false,
    started_at          timestamptz,
    completed_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    executor            varchar(10) NOT NULL DEFAULT 'queue',
    river_job_id        bigint,
    scheduled_for       timestamptz,
    owner_node          varchar(255),
    owner_instance      uuid,
    heartbeat_at        timestamptz,
    cancel_requested_at timestamptz,
    cancel_requested_by varchar(100),
    CONSTRAINT job_runs_executor_chk CHECK (executor IN ('queue', 'local')),
    CONSTRAINT job_runs_terminal_chk CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL)),
    CONSTRAINT job_runs_running_chk CHECK (status <> 'running' OR
        (started_at IS NOT NULL AND owner_instance IS NOT NULL AND heartbeat_at IS NOT NULL)),
    CONSTRAINT job_runs_json_chk CHECK (
        (params IS NULL OR jsonb_typeof(params) = 'object') AND
        (progress IS NULL OR jsonb_typeof(progress) = 'object') AND
        (result IS NULL OR jsonb_typeof(result) = 'object'))
);
CREATE INDEX job_runs_job_type_created_at_idx ON job_runs (job_type, created_at);
CREATE INDEX job_runs_status_idx ON job_runs (status);
CREATE INDEX job_runs_team_id_created_at_idx ON job_runs (team_id, created_at);
CREATE INDEX job_runs_project_id_idx ON job_runs (project_id);
CREATE UNIQUE INDEX job_runs_active_key_idx ON job_runs
    (job_type, COALESCE(project_id, '00000000-0000-0000-0000-000000000000'::uuid))
    WHERE status IN ('pending', 'running');
CREATE INDEX job_runs_team_list_idx ON job_runs (team_id, created_at DESC, id DESC) WHERE team_id IS NOT NULL;
CREATE INDEX job_runs_running_hb_idx ON job_runs (heartbeat_at) WHERE status = 'running';
CREATE INDEX job_runs_completed_at_idx ON job_runs (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX job_runs_type_project_idx ON job_runs (job_type, project_id, created_at DESC);

-- engine.md §3.3: one notification per insert, status change, first cancel request or
-- progress change; heartbeats alone stay silent.
CREATE FUNCTION owlmetry_job_runs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ev text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        ev := 'insert';
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        ev := 'status';
    ELSIF OLD.cancel_requested_at IS NULL AND NEW.cancel_requested_at IS NOT NULL THEN
        ev := 'cancel';
    ELSIF NEW.progress IS DISTINCT FROM OLD.progress THEN
        ev := 'progress';
    ELSE
        RETURN NULL;
    END IF;
    PERFORM pg_notify('owlmetry_job_run', NEW.id::text || ':' || ev);
    RETURN NULL;
END;
$$;
CREATE TRIGGER job_runs_notify AFTER INSERT OR UPDATE ON job_runs
    FOR EACH ROW EXECUTE FUNCTION owlmetry_job_runs_notify();

CREATE TABLE job_schedules (
    job_type      varchar(100) PRIMARY KEY,
    default_cron  varchar(100),
    cron          varchar(100),
    enabled       boolean NOT NULL DEFAULT true,
    updated_by    varchar(100),
    last_tick_at  timestamptz NOT NULL,
    last_outcome  varchar(20),
    last_run_id   uuid REFERENCES job_runs (id) ON DELETE SET NULL,
    fired_count   bigint NOT NULL DEFAULT 0,
    skipped_count bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT job_schedules_outcome_chk CHECK (last_outcome IS NULL OR
        last_outcome IN ('fired', 'skipped_active', 'skipped_disabled', 'error'))
);

CREATE TABLE owlmetry_instances (
    instance_id  uuid PRIMARY KEY,
    node_id      varchar(255) NOT NULL,
    version      varchar(50) NOT NULL,
    workers      integer NOT NULL,
    scheduler    boolean NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX owlmetry_instances_heartbeat_idx ON owlmetry_instances (heartbeat_at);

CREATE TABLE job_cursors (
    name       varchar(100) PRIMARY KEY,
    position   jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rate_buckets (
    bucket     varchar(200) PRIMARY KEY,
    tat        timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_logs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id       uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    actor_type    audit_actor_type NOT NULL,
    actor_id      varchar(255) NOT NULL,
    action        audit_action NOT NULL,
    resource_type varchar(50) NOT NULL,
    resource_id   varchar(255) NOT NULL,
    changes       jsonb,
    metadata      jsonb,
    "timestamp"   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_team_timestamp_idx ON audit_logs (team_id, "timestamp");
CREATE INDEX audit_logs_resource_idx ON audit_logs (resource_type, resource_id);
CREATE INDEX audit_logs_actor_idx ON audit_logs (actor_type, actor_id);

-- §5 event data: partitioned parents without keys, indexes or a DEFAULT partition (§10.1)
CREATE TABLE events (
    id                 uuid DEFAULT gen_random_uuid(),
    app_id             uuid NOT NULL,
    client_event_id    uuid,
    session_id         uuid NOT NULL,
    user_id            varchar(255),
    api_key_id         uuid,
    level              log_level NOT NULL,
    source_module      text,
    message            text NOT NULL,
    screen_name        varchar(255),
    custom_attributes  jsonb,
    environment        environment,
    os_version         varchar(50),
    app_version        varchar(50),
    sdk_name           varchar(50),
    sdk_version        varchar(50),
    device_model       varchar(100),
    build_number       varchar(50),
    locale             varchar(20),
    preferred_language varchar(35),
    country_code       varchar(2),
    is_dev             boolean NOT NULL DEFAULT false,
    "timestamp"        timestamptz NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE ("timestamp");

CREATE TABLE metric_events (
    id              uuid DEFAULT gen_random_uuid(),
    app_id          uuid NOT NULL,
    session_id      uuid NOT NULL,
    user_id         varchar(255),
    api_key_id      uuid,
    metric_slug     varchar(255) NOT NULL,
    phase           metric_phase NOT NULL,
    tracking_id     uuid,
    duration_ms     integer,
    error           text,
    attributes      jsonb,
    environment     environment,
    os_version      varchar(50),
    app_version     varchar(50),
    sdk_name        varchar(50),
    sdk_version     varchar(50),
    device_model    varchar(100),
    build_number    varchar(50),
    country_code    varchar(2),
    is_dev          boolean NOT NULL DEFAULT false,
    client_event_id uuid,
    "timestamp"     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE ("timestamp");

CREATE TABLE funnel_events (
    id                uuid DEFAULT gen_random_uuid(),
    app_id            uuid NOT NULL,
    session_id        uuid NOT NULL,
    user_id           varchar(255),
    api_key_id        uuid,
    step_name         varchar(255) NOT NULL,
    message           text NOT NULL,
    screen_name       varchar(255),
    custom_attributes jsonb,
    environment       environment,
    os_version        varchar(50),
    app_version       varchar(50),
    sdk_name          varchar(50),
    sdk_version       varchar(50),
    device_model      varchar(100),
    build_number      varchar(50),
    country_code      varchar(2),
    is_dev            boolean NOT NULL DEFAULT false,
    client_event_id   uuid,
    "timestamp"       timestamptz NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE ("timestamp");

CREATE TABLE event_deletions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid REFERENCES projects (id) ON DELETE SET NULL,
    table_name    varchar(50) NOT NULL,
    reason        varchar(50) NOT NULL,
    cutoff_date   timestamptz NOT NULL,
    deleted_count integer NOT NULL,
    executed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_deletions_project_executed_at_idx ON event_deletions (project_id, executed_at);

-- §6 issues (before event_attachments, which references them)
CREATE TABLE issues (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id                 uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    project_id             uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    status                 issue_status NOT NULL DEFAULT 'new',
    title                  text NOT NULL,
    source_module          text,
    is_dev                 boolean NOT NULL DEFAULT false,
    occurrence_count       integer NOT NULL DEFAULT 0,
    unique_user_count      integer NOT NULL DEFAULT 0,
    resolved_at_version    varchar(50),
    first_seen_app_version varchar(50),
    last_seen_app_version  varchar(50),
    first_seen_sdk_version varchar(50),
    last_seen_sdk_version  varchar(50),
    first_seen_at          timestamptz NOT NULL,
    last_seen_at           timestamptz NOT NULL,
    last_notified_at       timestamptz,
    snoozed_at             timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX issues_project_status_idx ON issues (project_id, status);
CREATE INDEX issues_project_last_seen_idx ON issues (project_id, last_seen_at);
CREATE INDEX issues_project_unique_users_idx ON issues (project_id, unique_user_count);
CREATE INDEX issues_app_status_idx ON issues (app_id, status);

CREATE TABLE issue_fingerprints (
    fingerprint varchar(64) NOT NULL,
    app_id      uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    is_dev      boolean NOT NULL DEFAULT false,
    issue_id    uuid NOT NULL REFERENCES issues (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX issue_fingerprints_pk ON issue_fingerprints (fingerprint, app_id, is_dev);
CREATE INDEX issue_fingerprints_issue_id_idx ON issue_fingerprints (issue_id);

CREATE TABLE issue_occurrences (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    issue_id     uuid NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    session_id   uuid NOT NULL,
    user_id      varchar(255),
    app_version  varchar(50),
    sdk_name     varchar(50),
    sdk_version  varchar(50),
    environment  environment,
    event_id     uuid,
    country_code varchar(2),
    "timestamp"  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX issue_occurrences_issue_session_idx ON issue_occurrences (issue_id, session_id);
CREATE INDEX issue_occurrences_issue_timestamp_idx ON issue_occurrences (issue_id, "timestamp");
CREATE INDEX issue_occurrences_user_id_idx ON issue_occurrences (user_id);

CREATE TABLE issue_comments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    issue_id    uuid NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    author_type varchar(10) NOT NULL,
    author_id   uuid NOT NULL,
    author_name varchar(255) NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX issue_comments_issue_created_at_idx ON issue_comments (issue_id, created_at);

CREATE TABLE event_attachments (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    app_id            uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    event_client_id   uuid,
    event_id          uuid,
    issue_id          uuid REFERENCES issues (id) ON DELETE SET NULL,
    user_id           varchar(255),
    original_filename varchar(512) NOT NULL,
    content_type      varchar(128) NOT NULL,
    size_bytes        bigint NOT NULL,
    sha256            varchar(64) NOT NULL,
    storage_path      text NOT NULL,
    is_dev            boolean NOT NULL DEFAULT false,
    uploaded_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX event_attachments_project_created_at_idx ON event_attachments (project_id, created_at);
CREATE INDEX event_attachments_app_event_client_id_idx ON event_attachments (app_id, event_client_id);
CREATE INDEX event_attachments_event_id_idx ON event_attachments (event_id);
CREATE INDEX event_attachments_issue_id_idx ON event_attachments (issue_id);
CREATE INDEX event_attachments_project_deleted_at_idx ON event_attachments (project_id, deleted_at);
CREATE INDEX event_attachments_project_user_idx ON event_attachments (project_id, user_id);
CREATE INDEX event_attachments_storage_path_idx ON event_attachments (storage_path) WHERE storage_path <> '';

-- §7 integrations and store data
CREATE TABLE project_integrations (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id         uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    provider           varchar(50) NOT NULL,
    config             jsonb NOT NULL,
    credentials_enc    bytea,
    credentials_key_id char(16),
    enabled            boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    CONSTRAINT project_integrations_credentials_chk CHECK ((credentials_enc IS NULL) = (credentials_key_id IS NULL))
);
CREATE UNIQUE INDEX project_integrations_project_provider_idx ON project_integrations (project_id, provider);
CREATE INDEX project_integrations_project_id_idx ON project_integrations (project_id);

CREATE TABLE app_store_ratings (
    id                             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id                        uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    project_id                     uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    app_id                         uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    store                          varchar(20) NOT NULL,
    country_code                   varchar(2) NOT NULL,
    average_rating                 numeric(3, 2),
    rating_count                   integer NOT NULL DEFAULT 0,
    current_version_average_rating numeric(3, 2),
    current_version_rating_count   integer,
    app_version                    varchar(50),
    snapshot_date                  date NOT NULL
);
CREATE UNIQUE INDEX app_store_ratings_app_store_country_date_idx ON app_store_ratings (app_id, store, country_code, snapshot_date);
CREATE INDEX app_store_ratings_project_date_idx ON app_store_ratings (project_id, snapshot_date);
CREATE INDEX app_store_ratings_team_date_idx ON app_store_ratings (team_id, snapshot_date);

CREATE TABLE app_store_reviews (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id                  uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    project_id               uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    app_id                   uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    store                    varchar(20) NOT NULL,
    external_id              varchar(255) NOT NULL,
    rating                   smallint NOT NULL,
    title                    text,
    body                     text NOT NULL,
    reviewer_name            varchar(255),
    country_code             varchar(2),
    app_version              varchar(50),
    language_code            varchar(10),
    developer_response       text,
    developer_response_at    timestamptz,
    developer_response_id    varchar(255),
    developer_response_state varchar(20),
    responded_by_user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at_in_store      timestamptz NOT NULL,
    ingested_at              timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    missing_since            timestamptz
);
CREATE UNIQUE INDEX app_store_reviews_app_store_external_idx ON app_store_reviews (app_id, store, external_id);
CREATE INDEX app_store_reviews_project_created_idx ON app_store_reviews (project_id, created_at_in_store);
CREATE INDEX app_store_reviews_app_created_idx ON app_store_reviews (app_id, created_at_in_store);
CREATE INDEX app_store_reviews_project_rating_idx ON app_store_reviews (project_id, rating);

CREATE TABLE ad_campaign_lifetime (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id               uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    project_id            uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    app_id                uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    apple_app_store_id    bigint NOT NULL,
    network               varchar(32) NOT NULL,
    campaign_id           varchar(64) NOT NULL,
    campaign_name         varchar(500),
    campaign_status       varchar(32),
    campaign_start_date   date,
    campaign_end_date     date,
    total_spend_usd_cents bigint,
    spend_currency        varchar(8),
    spend_local_micros    bigint,
    total_impressions     bigint NOT NULL DEFAULT 0,
    total_taps            bigint NOT NULL DEFAULT 0,
    total_installs        bigint NOT NULL DEFAULT 0,
    last_synced_at        timestamptz NOT NULL
);
CREATE UNIQUE INDEX ad_campaign_lifetime_project_network_campaign_idx ON ad_campaign_lifetime (project_id, network, campaign_id);
CREATE INDEX ad_campaign_lifetime_project_network_name_idx ON ad_campaign_lifetime (project_id, network, campaign_name);
CREATE INDEX ad_campaign_lifetime_project_app_network_idx ON ad_campaign_lifetime (project_id, app_id, network);
CREATE INDEX ad_campaign_lifetime_team_network_idx ON ad_campaign_lifetime (team_id, network);

CREATE TABLE ad_adgroup_lifetime (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id               uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    project_id            uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    app_id                uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    network               varchar(32) NOT NULL,
    campaign_id           varchar(64) NOT NULL,
    ad_group_id           varchar(64) NOT NULL,
    ad_group_name         varchar(500),
    ad_group_status       varchar(32),
    ad_group_start_date   date,
    ad_group_end_date     date,
    total_spend_usd_cents bigint,
    spend_currency        varchar(8),
    spend_local_micros    bigint,
    total_impressions     bigint NOT NULL DEFAULT 0,
    total_taps            bigint NOT NULL DEFAULT 0,
    total_installs        bigint NOT NULL DEFAULT 0,
    last_synced_at        timestamptz NOT NULL
);
CREATE UNIQUE INDEX ad_adgroup_lifetime_project_network_adgroup_idx ON ad_adgroup_lifetime (project_id, network, ad_group_id);
CREATE INDEX ad_adgroup_lifetime_project_network_name_idx ON ad_adgroup_lifetime (project_id, network, ad_group_name);
CREATE INDEX ad_adgroup_lifetime_project_network_campaign_idx ON ad_adgroup_lifetime (project_id, network, campaign_id);

-- §8 notifications
CREATE TABLE notifications (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id    uuid REFERENCES teams (id) ON DELETE CASCADE,
    type       varchar(64) NOT NULL,
    title      text NOT NULL,
    body       text,
    link       text,
    data       jsonb NOT NULL DEFAULT '{}',
    read_at    timestamptz,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_created_at_idx ON notifications (user_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX notifications_user_unread_idx ON notifications (user_id) WHERE read_at IS NULL AND deleted_at IS NULL;
CREATE INDEX notifications_team_id_idx ON notifications (team_id);
CREATE INDEX notifications_type_created_at_idx ON notifications (type, created_at);

CREATE TABLE notification_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    notification_id  uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel          varchar(32) NOT NULL,
    status           varchar(16) NOT NULL DEFAULT 'pending',
    attempt_metadata jsonb,
    error            text,
    attempted_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_deliveries_notification_id_idx ON notification_deliveries (notification_id);
CREATE INDEX notification_deliveries_pending_idx ON notification_deliveries (id) WHERE status = 'pending';

-- §9 companion tables swept by soft_delete_cleanup
CREATE TABLE metric_definitions (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       varchar(255) NOT NULL,
    slug       varchar(255) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX metric_definitions_project_slug_idx ON metric_definitions (project_id, slug);

CREATE TABLE funnel_definitions (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       varchar(255) NOT NULL,
    slug       varchar(255) NOT NULL,
    steps      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX funnel_definitions_project_slug_idx ON funnel_definitions (project_id, slug);

CREATE TABLE team_invitations (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id            uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    email              varchar(255) NOT NULL,
    role               team_role NOT NULL DEFAULT 'member',
    token              uuid NOT NULL DEFAULT gen_random_uuid(),
    invited_by_user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at         timestamptz NOT NULL,
    accepted_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX team_invitations_team_email_idx ON team_invitations (team_id, email);
CREATE UNIQUE INDEX team_invitations_token_idx ON team_invitations (token);

CREATE TABLE feedback (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    session_id uuid,
    user_id    varchar(255),
    message    text NOT NULL,
    status     feedback_status NOT NULL DEFAULT 'new',
    is_dev     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

CREATE TABLE feedback_comments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    feedback_id uuid NOT NULL REFERENCES feedback (id) ON DELETE CASCADE,
    author_type varchar(10) NOT NULL,
    author_id   uuid NOT NULL,
    author_name varchar(255) NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

CREATE TABLE questionnaires (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    app_id     uuid REFERENCES apps (id) ON DELETE CASCADE,
    slug       varchar(64) NOT NULL,
    name       varchar(200) NOT NULL,
    schema     jsonb NOT NULL,
    is_active  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

CREATE TABLE questionnaire_responses (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    questionnaire_id uuid NOT NULL REFERENCES questionnaires (id) ON DELETE RESTRICT,
    slug             varchar(64) NOT NULL,
    app_id           uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    project_id       uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id          varchar(255),
    answers          jsonb NOT NULL,
    submitted_at     timestamptz,
    status           questionnaire_response_status NOT NULL DEFAULT 'new',
    is_dev           boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);

CREATE TABLE questionnaire_response_comments (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    questionnaire_response_id uuid NOT NULL REFERENCES questionnaire_responses (id) ON DELETE CASCADE,
    author_type               varchar(10) NOT NULL,
    author_id                 uuid NOT NULL,
    author_name               varchar(255) NOT NULL,
    body                      text NOT NULL,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    deleted_at                timestamptz
);
