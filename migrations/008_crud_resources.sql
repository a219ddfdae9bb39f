-- 008: what the configuration API (issue 4 item 4) needs from the schema.
--
-- Applied inside the runner's transaction; ASCII only.

-- A webhook connector's shared secret (HMAC-SHA-256 signatures of generic
-- webhooks). Write-only through the API: answers show "********" when one is
-- set. It is kept out of config on purpose, so that config can be returned
-- whole and a secret never leaks through it.
ALTER TABLE connectors ADD COLUMN secret TEXT;

-- Dependencies must form no cycle: the pipeline walks them upstream, and a
-- cycle would make every device in it the others' root cause. Checked in the
-- database, inside the writing transaction, so that two writers adding A->B
-- and B->A at the same moment cannot both succeed: the transaction-level
-- advisory lock serialises the check, and each query of the function sees
-- what the previous holder committed (READ COMMITTED takes a new snapshot
-- per statement). Any writer is held to it, not only the API.
-- The message starts with "dependencies.depends_on_ip:" so that the API can
-- name the field in its 422.
CREATE FUNCTION opsc_dependencies_no_cycle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1869640547, 8);
    IF EXISTS (
        WITH RECURSIVE up(ip) AS (
            SELECT NEW.depends_on_ip
            UNION
            SELECT d.depends_on_ip FROM dependencies d JOIN up ON d.device_ip = up.ip
            WHERE d.id <> NEW.id)
        SELECT 1 FROM up WHERE ip = NEW.device_ip) THEN
        RAISE EXCEPTION 'dependencies.depends_on_ip: % -> % would close a dependency cycle',
            NEW.device_ip, NEW.depends_on_ip
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER dependencies_no_cycle
    BEFORE INSERT OR UPDATE OF device_ip, depends_on_ip ON dependencies
    FOR EACH ROW EXECUTE FUNCTION opsc_dependencies_no_cycle();
