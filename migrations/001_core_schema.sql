-- 001_core_schema: the OpsConductor core data model (seed 000, column for column)
-- plus the supporting tables the seed keeps (users, roles, sessions, tokens,
-- credentials, settings, audit log).
--
-- Applied by the migration runner (src/store/migrate.c) inside a transaction it
-- opens itself: no BEGIN/COMMIT here. Plain CREATE TABLE (not IF NOT EXISTS) on
-- purpose: a leftover table from an older system with different columns must
-- fail the migration loudly instead of being silently accepted.
--
-- Column names, types, defaults, NULLability, CHECKs and index names of the
-- eight seed tables are exactly the seed's; tests/fixtures/schema_000.tsv and
-- tests/integration/check_schema.sh hold this file to that. Where this file
-- goes beyond the seed, a comment says why.
--
-- gen_random_uuid() is core since PostgreSQL 13: no pgcrypto/uuid-ossp needed.
-- ASCII only: the file is embedded in the binary and checksummed.

-- ---------------------------------------------------------------------------
-- updated_at maintenance
-- ---------------------------------------------------------------------------

-- now() is the transaction start time, so every row touched by one batch gets
-- the same updated_at; that is what a batch writer wants (one logical change).
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- ---------------------------------------------------------------------------
-- 2.1 alerts
-- ---------------------------------------------------------------------------

CREATE TABLE alerts (
    -- Identity
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    source_system VARCHAR(50) NOT NULL,
    source_alert_id VARCHAR(255) NOT NULL,

    -- Device. No FK to devices(ip_address) (the seed's ERD draws one, its DDL
    -- does not): traps arrive from devices nobody has registered yet, and an
    -- alert must never be refused for that.
    device_ip VARCHAR(45),  -- IPv4 or IPv6
    device_name VARCHAR(255),

    -- Classification (per standard)
    severity VARCHAR(20) NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning', 'info', 'clear')),
    category VARCHAR(50) NOT NULL CHECK (category IN ('network', 'power', 'video', 'wireless', 'security', 'environment', 'compute', 'storage', 'application', 'unknown')),
    alert_type VARCHAR(100) NOT NULL,

    -- Priority (ITIL)
    impact VARCHAR(20) CHECK (impact IN ('high', 'medium', 'low')),
    urgency VARCHAR(20) CHECK (urgency IN ('high', 'medium', 'low')),
    priority VARCHAR(5) CHECK (priority IN ('P1', 'P2', 'P3', 'P4', 'P5')),

    -- Content
    title VARCHAR(255) NOT NULL,
    message TEXT,

    -- State
    status VARCHAR(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'acknowledged', 'suppressed', 'resolved', 'expired')),
    is_clear BOOLEAN DEFAULT FALSE,

    -- Timestamps
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
    received_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    acknowledged_at TIMESTAMP WITH TIME ZONE,
    acknowledged_by VARCHAR(100),
    resolved_at TIMESTAMP WITH TIME ZONE,
    resolved_by VARCHAR(100),

    -- Correlation. The seed's plain REFERENCES (NO ACTION) is kept: retention
    -- must clear correlated_to_id pointing at an alert before deleting it.
    correlated_to_id UUID REFERENCES alerts(id),
    correlation_rule VARCHAR(100),

    -- Additional data
    tags TEXT[],
    custom_fields JSONB DEFAULT '{}',
    raw_data JSONB NOT NULL DEFAULT '{}',

    -- Deduplication
    fingerprint VARCHAR(64),  -- SHA256 hash for dedup
    occurrence_count INTEGER DEFAULT 1,
    last_occurrence_at TIMESTAMP WITH TIME ZONE,

    -- Audit
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Constraints
    CONSTRAINT alerts_device_required CHECK (device_ip IS NOT NULL OR device_name IS NOT NULL)
);

-- The seed writes "CONSTRAINT alerts_unique_fingerprint UNIQUE (fingerprint,
-- status) WHERE status = 'active'", which is not valid SQL (a table constraint
-- cannot be partial). The intent - at most one ACTIVE alert per fingerprint,
-- any number of resolved/expired ones - is a partial unique index. It is what
-- makes dedup safe across several collectors sharing one database
-- (INSERT ... ON CONFLICT (fingerprint) WHERE status = 'active' DO UPDATE).
-- NULL fingerprints are not deduplicated (NULLs are distinct), by design.
CREATE UNIQUE INDEX alerts_unique_fingerprint ON alerts (fingerprint) WHERE status = 'active';

-- Indexes for common queries
CREATE INDEX idx_alerts_status ON alerts(status);
CREATE INDEX idx_alerts_severity ON alerts(severity);
CREATE INDEX idx_alerts_category ON alerts(category);
CREATE INDEX idx_alerts_device_ip ON alerts(device_ip);
CREATE INDEX idx_alerts_occurred_at ON alerts(occurred_at);
CREATE INDEX idx_alerts_source_system ON alerts(source_system);
CREATE INDEX idx_alerts_fingerprint ON alerts(fingerprint);
CREATE INDEX idx_alerts_active ON alerts(status) WHERE status = 'active';

-- Beyond the seed: the self-FK needs an index on the referencing side or every
-- DELETE of an alert (retention) scans the whole table. Partial: almost all
-- alerts are uncorrelated.
CREATE INDEX idx_alerts_correlated_to_id ON alerts(correlated_to_id) WHERE correlated_to_id IS NOT NULL;

-- Trigger for updated_at
CREATE TRIGGER alerts_updated_at
    BEFORE UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ---------------------------------------------------------------------------
-- 2.2 alert_history
-- ---------------------------------------------------------------------------

CREATE TABLE alert_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_id UUID NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,

    -- Change details
    action VARCHAR(50) NOT NULL,  -- 'created', 'acknowledged', 'resolved', 'suppressed', 'updated', 'reopened'
    old_status VARCHAR(20),
    new_status VARCHAR(20),

    -- Actor (free text, not an FK: history must outlive user accounts and
    -- also records system actors such as the correlator)
    user_id VARCHAR(100),
    user_name VARCHAR(255),

    -- Notes
    notes TEXT,

    -- Metadata
    changes JSONB,  -- What fields changed

    -- Timestamp
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE INDEX idx_alert_history_alert_id ON alert_history(alert_id);
CREATE INDEX idx_alert_history_created_at ON alert_history(created_at);

-- ---------------------------------------------------------------------------
-- 2.3 devices
-- ---------------------------------------------------------------------------

CREATE TABLE devices (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    -- Identity
    ip_address VARCHAR(45) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,

    -- NetBox sync
    netbox_id INTEGER,
    netbox_url VARCHAR(500),

    -- Classification
    device_type VARCHAR(100),
    manufacturer VARCHAR(100),
    model VARCHAR(100),

    -- Location
    site VARCHAR(100),
    location VARCHAR(255),

    -- Status
    status VARCHAR(50) DEFAULT 'active',

    -- Metadata
    tags TEXT[],
    custom_fields JSONB DEFAULT '{}',

    -- Audit
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    last_synced_at TIMESTAMP WITH TIME ZONE
);

-- idx_devices_ip_address duplicates the UNIQUE constraint's own index
-- (devices_ip_address_key); kept because the seed names it. A later migration
-- may drop it once nothing refers to the name.
CREATE INDEX idx_devices_ip_address ON devices(ip_address);
CREATE INDEX idx_devices_name ON devices(name);
CREATE INDEX idx_devices_netbox_id ON devices(netbox_id);
CREATE INDEX idx_devices_site ON devices(site);

CREATE TRIGGER devices_updated_at
    BEFORE UPDATE ON devices
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ---------------------------------------------------------------------------
-- 2.4 dependencies
-- ---------------------------------------------------------------------------

-- No FKs to devices (as in the seed's DDL): dependencies are often entered or
-- discovered before the device is synced from NetBox.
CREATE TABLE dependencies (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    -- Relationship
    device_ip VARCHAR(45) NOT NULL,       -- The dependent device
    depends_on_ip VARCHAR(45) NOT NULL,   -- The device it depends on

    -- Classification
    dependency_type VARCHAR(50) NOT NULL DEFAULT 'network',  -- 'network', 'power', 'service'

    -- Documentation
    description TEXT,

    -- Metadata
    auto_discovered BOOLEAN DEFAULT FALSE,
    confidence DECIMAL(3,2),  -- 0.00 - 1.00 for auto-discovered

    -- Audit
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    created_by VARCHAR(100),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Constraints
    CONSTRAINT dependencies_no_self_reference CHECK (device_ip != depends_on_ip),
    CONSTRAINT dependencies_unique UNIQUE (device_ip, depends_on_ip, dependency_type),
    -- Beyond the seed: DECIMAL(3,2) alone admits up to 9.99; the seed's
    -- comment says the range is 0.00 - 1.00.
    CONSTRAINT dependencies_confidence_range CHECK (confidence >= 0 AND confidence <= 1)
);

CREATE INDEX idx_dependencies_device_ip ON dependencies(device_ip);
CREATE INDEX idx_dependencies_depends_on_ip ON dependencies(depends_on_ip);

CREATE TRIGGER dependencies_updated_at
    BEFORE UPDATE ON dependencies
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ---------------------------------------------------------------------------
-- 2.5 connectors
-- ---------------------------------------------------------------------------

CREATE TABLE connectors (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    -- Identity
    name VARCHAR(100) NOT NULL UNIQUE,
    type VARCHAR(50) NOT NULL,  -- 'prtg', 'mcp', 'snmp', 'eaton', 'axis', etc.

    -- Status
    enabled BOOLEAN DEFAULT FALSE,
    status VARCHAR(50) DEFAULT 'unknown',  -- 'connected', 'disconnected', 'error', 'unknown'
    error_message TEXT,

    -- Configuration. Secrets never go in here: config holds references such
    -- as "password_ref": "vault:<credentials.name>" resolved against the
    -- encrypted credentials table.
    config JSONB NOT NULL DEFAULT '{}',

    -- Statistics
    last_poll_at TIMESTAMP WITH TIME ZONE,
    last_success_at TIMESTAMP WITH TIME ZONE,
    alerts_received INTEGER DEFAULT 0,
    alerts_today INTEGER DEFAULT 0,

    -- Audit
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE INDEX idx_connectors_type ON connectors(type);
CREATE INDEX idx_connectors_enabled ON connectors(enabled);

CREATE TRIGGER connectors_updated_at
    BEFORE UPDATE ON connectors
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ---------------------------------------------------------------------------
-- 2.6 oid_mappings
-- ---------------------------------------------------------------------------

CREATE TABLE oid_mappings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    -- Match criteria
    oid_pattern VARCHAR(255) NOT NULL,  -- Supports wildcards: "1.3.6.1.4.1.6141.*"
    vendor VARCHAR(50),  -- 'ciena', 'eaton', 'cisco', NULL for generic

    -- Classification
    alert_type VARCHAR(100) NOT NULL,
    category VARCHAR(50) NOT NULL,
    default_severity VARCHAR(20) NOT NULL,

    -- Display
    title_template VARCHAR(255),  -- "Optical Power Alarm on {interface}"
    description TEXT,

    -- State handling
    is_clear_event BOOLEAN DEFAULT FALSE,
    clear_oid_pattern VARCHAR(255),  -- OID that clears this alarm

    -- Documentation
    mib_name VARCHAR(100),
    mib_object VARCHAR(100),
    notes TEXT,

    -- Audit
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Constraints
    -- The seed's UNIQUE (oid_pattern, vendor) lets any number of generic rows
    -- (vendor NULL) share one oid_pattern, because NULLs are distinct in a
    -- plain UNIQUE; the mapper would then pick one at random, and the seed's
    -- own ON CONFLICT DO NOTHING would insert the generic rows again on a
    -- re-run. NULLS NOT DISTINCT (PostgreSQL 15) treats NULL vendor as one
    -- value while keeping the seed's constraint name.
    CONSTRAINT oid_mappings_unique UNIQUE NULLS NOT DISTINCT (oid_pattern, vendor),
    -- Beyond the seed: a mapping's category/severity become an alert's, so
    -- they must satisfy the alerts CHECKs. Rejecting a bad mapping at the API
    -- is far better than every matching trap failing its batch insert later.
    CONSTRAINT oid_mappings_category_check CHECK (category IN ('network', 'power', 'video', 'wireless', 'security', 'environment', 'compute', 'storage', 'application', 'unknown')),
    CONSTRAINT oid_mappings_default_severity_check CHECK (default_severity IN ('critical', 'major', 'minor', 'warning', 'info', 'clear'))
);

CREATE INDEX idx_oid_mappings_oid_pattern ON oid_mappings(oid_pattern);
CREATE INDEX idx_oid_mappings_vendor ON oid_mappings(vendor);

CREATE TRIGGER oid_mappings_updated_at
    BEFORE UPDATE ON oid_mappings
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Seed default OID mappings (values exactly as in the seed; is_clear_event is
-- left at its default FALSE there too, linkUp is recognisable as a clear by
-- default_severity = 'clear').
INSERT INTO oid_mappings (oid_pattern, vendor, alert_type, category, default_severity, title_template, description) VALUES
('1.3.6.1.6.3.1.1.5.1', NULL, 'cold_start', 'network', 'warning', 'Device Cold Start - {device_name}', 'Device has rebooted (cold start)'),
('1.3.6.1.6.3.1.1.5.2', NULL, 'warm_start', 'network', 'info', 'Device Warm Start - {device_name}', 'Device has rebooted (warm start)'),
('1.3.6.1.6.3.1.1.5.3', NULL, 'link_down', 'network', 'major', 'Interface Down - {device_name}', 'Network interface has gone down'),
('1.3.6.1.6.3.1.1.5.4', NULL, 'link_up', 'network', 'clear', 'Interface Up - {device_name}', 'Network interface has come up'),
('1.3.6.1.6.3.1.1.5.5', NULL, 'auth_failure', 'security', 'warning', 'Authentication Failure - {device_name}', 'SNMP authentication failure')
ON CONFLICT DO NOTHING;

-- ---------------------------------------------------------------------------
-- 2.7 notification_rules
-- ---------------------------------------------------------------------------

CREATE TABLE notification_rules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    -- Identity
    name VARCHAR(100) NOT NULL,
    description TEXT,

    -- Status
    enabled BOOLEAN DEFAULT TRUE,
    priority INTEGER DEFAULT 100,  -- Lower = higher priority

    -- Conditions (JSON query format), e.g.
    -- {"severity": ["critical", "major"], "category": ["network"], "device_ip_pattern": "10.1.*"}
    conditions JSONB NOT NULL DEFAULT '{}',

    -- Actions, e.g.
    -- [{"type": "email", "recipients": ["noc@example.com"]}, {"type": "webhook", "url": "https://..."}]
    channels JSONB NOT NULL DEFAULT '[]',

    -- Throttling
    throttle_minutes INTEGER DEFAULT 0,  -- 0 = no throttle
    last_triggered_at TIMESTAMP WITH TIME ZONE,

    -- Audit
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    created_by VARCHAR(100)
);

CREATE INDEX idx_notification_rules_enabled ON notification_rules(enabled);
CREATE INDEX idx_notification_rules_priority ON notification_rules(priority);

CREATE TRIGGER notification_rules_updated_at
    BEFORE UPDATE ON notification_rules
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ---------------------------------------------------------------------------
-- 2.8 notification_log
-- ---------------------------------------------------------------------------

-- The seed's FKs are plain REFERENCES (NO ACTION), kept as is: a rule or an
-- alert that has delivery records cannot be deleted until its log rows are
-- (disable a rule instead; retention deletes log rows before alerts).
CREATE TABLE notification_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    -- References
    alert_id UUID REFERENCES alerts(id),
    rule_id UUID REFERENCES notification_rules(id),

    -- Delivery details
    channel VARCHAR(50) NOT NULL,  -- 'email', 'webhook', 'sms'
    recipient VARCHAR(255) NOT NULL,

    -- Status
    status VARCHAR(50) NOT NULL,  -- 'sent', 'failed', 'pending'
    error_message TEXT,

    -- Content (for debugging)
    payload JSONB,

    -- Timing
    sent_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    response_time_ms INTEGER
);

CREATE INDEX idx_notification_log_alert_id ON notification_log(alert_id);
CREATE INDEX idx_notification_log_sent_at ON notification_log(sent_at);
CREATE INDEX idx_notification_log_status ON notification_log(status);
-- Beyond the seed: index the other FK so deleting a rule does not scan the log.
CREATE INDEX idx_notification_log_rule_id ON notification_log(rule_id);

-- ===========================================================================
-- Supporting tables (seed 000 section 3.1: kept from the current system).
-- Conventions: UUID keys like the core tables; timestamps NOT NULL where a
-- value always exists; actors recorded as free text (username or token name)
-- rather than FKs, so records outlive the accounts that made them; IP
-- addresses as VARCHAR(45) text like alerts.device_ip (the C code passes
-- text parameters and never needs INET operators).
-- ===========================================================================

-- ---------------------------------------------------------------------------
-- roles: a fixed set. The CHECK makes the set part of the schema; a new role
-- is a migration plus code, never a row inserted at run time.
-- ---------------------------------------------------------------------------

CREATE TABLE roles (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(20) NOT NULL UNIQUE CHECK (name IN ('viewer', 'operator', 'admin', 'ingest')),
    description TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

INSERT INTO roles (name, description) VALUES
('viewer',   'Read-only access to alerts, devices and configuration'),
('operator', 'Viewer plus acknowledge, resolve, suppress and annotate alerts'),
('admin',    'Full access: users, tokens, connectors, mappings, rules, settings'),
('ingest',   'Machine role: may only submit events to the ingestion endpoints')
ON CONFLICT (name) DO NOTHING;

-- ---------------------------------------------------------------------------
-- users
-- ---------------------------------------------------------------------------

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    username VARCHAR(100) NOT NULL,
    display_name VARCHAR(255),
    email VARCHAR(255),
    -- Self-describing PBKDF2-HMAC-SHA-256 string "algorithm$iterations$salt$hash"
    -- so iterations can be raised later and old hashes still verify (and be
    -- re-hashed on the next successful login). The CHECK only enforces the
    -- four-field shape: a plaintext password cannot be stored by mistake.
    password_hash TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    -- Lockout state lives in the row so it is shared by every server instance.
    failed_login_count INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP WITH TIME ZONE,
    last_login_at TIMESTAMP WITH TIME ZONE,
    password_changed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),

    CONSTRAINT users_username_not_blank CHECK (length(btrim(username)) > 0),
    CONSTRAINT users_password_hash_format CHECK (password_hash ~ '^[A-Za-z0-9_-]+[$][0-9]+[$][^$]+[$][^$]+$'),
    CONSTRAINT users_failed_login_count_nonneg CHECK (failed_login_count >= 0)
);

-- Case-insensitive uniqueness: "Admin" and "admin" must not be two accounts.
-- Log-in looks the user up by lower(username) = lower($1), which uses this.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

CREATE TRIGGER users_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ---------------------------------------------------------------------------
-- user_roles
-- ---------------------------------------------------------------------------

CREATE TABLE user_roles (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id UUID NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    granted_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    granted_by VARCHAR(255),
    PRIMARY KEY (user_id, role_id)
);

-- The PK covers lookups by user; this covers "who holds role X" and the
-- ON DELETE CASCADE from roles.
CREATE INDEX idx_user_roles_role_id ON user_roles(role_id);

-- ---------------------------------------------------------------------------
-- sessions: browser sessions. Only the SHA-256 of the cookie value is
-- stored (lower-case hex, 64 chars), so a leaked table or backup yields no
-- usable session. Validation: token_hash = $1 AND revoked_at IS NULL AND
-- expires_at > now().
-- ---------------------------------------------------------------------------

CREATE TABLE sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_seen_at TIMESTAMP WITH TIME ZONE,
    ip_address VARCHAR(45),
    user_agent TEXT,
    revoked_at TIMESTAMP WITH TIME ZONE,

    CONSTRAINT sessions_token_hash_sha256_hex CHECK (token_hash ~ '^[0-9a-f]{64}$')
);

-- expires_at: the periodic purge of expired sessions.
CREATE INDEX idx_sessions_expires_at ON sessions(expires_at);
-- user_id: "log out everywhere" / revoke on password change, and the cascade.
CREATE INDEX idx_sessions_user_id ON sessions(user_id);

-- ---------------------------------------------------------------------------
-- api_tokens: bearer tokens for opsctl, collectors and integrations, stored
-- only as SHA-256 hex like sessions. token_prefix (the first characters of
-- the token) is kept only so a human can recognise a token in listings.
-- role is a role name (not role_id) because a token carries exactly one role
-- and the check on each request should need no join. user_id NULL = a
-- service token owned by nobody; a user's tokens die with the user
-- (CASCADE), never outliving the account with its privileges.
-- expires_at NULL = does not expire (typical for 'ingest' collector tokens).
-- ---------------------------------------------------------------------------

CREATE TABLE api_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix VARCHAR(16) NOT NULL,
    role VARCHAR(20) NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'ingest')),
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    created_by VARCHAR(255),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMP WITH TIME ZONE,
    last_used_at TIMESTAMP WITH TIME ZONE,
    revoked_at TIMESTAMP WITH TIME ZONE,

    CONSTRAINT api_tokens_token_hash_sha256_hex CHECK (token_hash ~ '^[0-9a-f]{64}$')
);

CREATE INDEX idx_api_tokens_user_id ON api_tokens(user_id);

-- ---------------------------------------------------------------------------
-- credentials: encrypted secret store (connector passwords, SNMPv3 keys,
-- webhook/SMTP secrets), referenced by name from connectors.config.
-- secret is AEAD ciphertext (with tag); nonce is its per-encryption nonce;
-- key_id names the master key that encrypted it so keys can be rotated
-- row by row. The server never returns secret through the API.
-- ---------------------------------------------------------------------------

CREATE TABLE credentials (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL UNIQUE,
    kind VARCHAR(50) NOT NULL,  -- 'password', 'snmp_v3', 'api_key', 'bearer', 'smtp', ...
    secret BYTEA NOT NULL,
    nonce BYTEA NOT NULL,
    key_id VARCHAR(100) NOT NULL,
    description TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    created_by VARCHAR(255),
    updated_by VARCHAR(255),

    CONSTRAINT credentials_nonce_not_empty CHECK (octet_length(nonce) > 0),
    -- Reusing a nonce under the same key breaks AES-GCM/ChaCha20-Poly1305
    -- completely; the database refuses it even if the code has a bug.
    CONSTRAINT credentials_nonce_unique UNIQUE (key_id, nonce)
);

CREATE TRIGGER credentials_updated_at
    BEFORE UPDATE ON credentials
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ---------------------------------------------------------------------------
-- system_settings: run-time settings editable through the API (the YAML file
-- and OPSC_* variables cover start-up configuration). JSONB so a value can be
-- a number, string, bool or object without per-type columns.
-- ---------------------------------------------------------------------------

CREATE TABLE system_settings (
    key VARCHAR(100) PRIMARY KEY,
    value JSONB NOT NULL,
    description TEXT,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_by VARCHAR(255)
);

CREATE TRIGGER system_settings_updated_at
    BEFORE UPDATE ON system_settings
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ---------------------------------------------------------------------------
-- audit_log: append-only record of security-relevant actions (log-ins, token
-- and user changes, configuration edits, denied requests). BIGINT identity
-- rather than UUID: rows are only ever appended by this database, and the
-- key then also gives insertion order cheaply.
-- ---------------------------------------------------------------------------

CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    actor VARCHAR(255),
    actor_type VARCHAR(20) CHECK (actor_type IN ('user', 'token', 'system')),
    action VARCHAR(100) NOT NULL,
    resource_type VARCHAR(50),
    resource_id VARCHAR(255),
    ip_address VARCHAR(45),
    result VARCHAR(20) NOT NULL CHECK (result IN ('success', 'failure', 'denied')),
    details JSONB DEFAULT '{}'
);

CREATE INDEX idx_audit_log_occurred_at ON audit_log(occurred_at);
CREATE INDEX idx_audit_log_resource ON audit_log(resource_type, resource_id);
CREATE INDEX idx_audit_log_actor ON audit_log(actor);

-- An audit trail that can be edited is not one: UPDATE is refused. DELETE
-- stays allowed for retention.
CREATE OR REPLACE FUNCTION audit_log_forbid_update()
RETURNS TRIGGER AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_no_update
    BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_forbid_update();
