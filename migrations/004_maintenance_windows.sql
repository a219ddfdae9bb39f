-- 004: maintenance windows (issue 3 items 7e and 9).
--
-- A window names what it covers (every matcher that is set must match; NULL =
-- any) and when: the validity range [starts_at, ends_at) (ends_at NULL = open
-- ended), optionally narrowed to a recurrence: every day, or on the ISO
-- weekdays in recurrence_days (1 = Monday .. 7 = Sunday), from
-- recurrence_start for recurrence_duration, in wall-clock time of time_zone.
-- "Every Sunday 02:00-04:00 Europe/Berlin" is recurrence 'weekly',
-- recurrence_days {7}, recurrence_start '02:00', recurrence_duration '2 hours',
-- time_zone 'Europe/Berlin'.
--
-- Time-zone rules stay in PostgreSQL: the server never evaluates a recurrence
-- itself; its loader asks PostgreSQL for the concrete UTC intervals of the
-- next days (generate_series + AT TIME ZONE, see src/sinks/store_sink.c), so
-- daylight-saving changes come out right by construction.
--
-- A window without any matcher is refused (CHECK): one empty row silencing
-- every alert of the NOC is too easy a mistake. To cover everything on
-- purpose, say so: device_ip_cidr '0.0.0.0/0' (plus a second window with
-- '::/0' for IPv6 devices).
--
-- Applied inside the runner's transaction; ASCII only.

CREATE TABLE maintenance_windows (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,

    -- Matchers (NULL = any)
    device_ip_cidr CIDR,
    device_name_glob VARCHAR(255),   -- shell glob (fnmatch), case-insensitive
    site VARCHAR(100),               -- devices.site of the alert's device
    category VARCHAR(50),
    alert_type VARCHAR(100),

    -- Validity range
    starts_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    ends_at TIMESTAMP WITH TIME ZONE,

    -- Optional recurrence, in wall-clock time of time_zone
    recurrence VARCHAR(10),
    recurrence_days INTEGER[],
    recurrence_start TIME,
    recurrence_duration INTERVAL,
    time_zone VARCHAR(64) NOT NULL DEFAULT 'UTC',

    -- Why and who
    reason TEXT,
    created_by VARCHAR(255),
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT maintenance_windows_matcher_check CHECK (
        device_ip_cidr IS NOT NULL OR device_name_glob IS NOT NULL OR site IS NOT NULL
        OR category IS NOT NULL OR alert_type IS NOT NULL),
    CONSTRAINT maintenance_windows_category_check CHECK (category IN ('network', 'power', 'video',
        'wireless', 'security', 'environment', 'compute', 'storage', 'application', 'unknown')),
    CONSTRAINT maintenance_windows_range_check CHECK (ends_at IS NULL OR ends_at > starts_at),
    CONSTRAINT maintenance_windows_recurrence_check CHECK (
        (recurrence IS NULL AND recurrence_days IS NULL AND recurrence_start IS NULL
         AND recurrence_duration IS NULL)
        OR (recurrence = 'daily' AND recurrence_days IS NULL AND recurrence_start IS NOT NULL
            AND recurrence_duration > INTERVAL '0' AND recurrence_duration <= INTERVAL '1 day')
        OR (recurrence = 'weekly' AND cardinality(recurrence_days) > 0
            AND recurrence_days <@ ARRAY[1, 2, 3, 4, 5, 6, 7] AND recurrence_start IS NOT NULL
            AND recurrence_duration > INTERVAL '0' AND recurrence_duration <= INTERVAL '7 days'))
);

CREATE INDEX idx_maintenance_windows_enabled ON maintenance_windows(enabled);

CREATE TRIGGER maintenance_windows_updated_at
    BEFORE UPDATE ON maintenance_windows
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- time_zone must be an IANA name PostgreSQL knows ('Europe/Berlin', 'UTC'):
-- AT TIME ZONE alone would also take abbreviations and POSIX strings ('CET',
-- 'UTC+1') that have no daylight-saving rules, which is never what a
-- recurring window means. A trigger, not a CHECK: the catalogue it reads is
-- not immutable.
CREATE FUNCTION opsc_maintenance_windows_check_tz() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = NEW.time_zone) THEN
        RAISE EXCEPTION 'maintenance_windows.time_zone: unknown time zone "%"', NEW.time_zone
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use an IANA name such as Europe/Berlin or UTC.';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER maintenance_windows_check_tz
    BEFORE INSERT OR UPDATE OF time_zone ON maintenance_windows
    FOR EACH ROW EXECUTE FUNCTION opsc_maintenance_windows_check_tz();

-- Same channel as the other reference data (003): running servers reload.
CREATE TRIGGER maintenance_windows_notify_refdata
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON maintenance_windows
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_notify_refdata();
