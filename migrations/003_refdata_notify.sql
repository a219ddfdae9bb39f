-- Reference data changed by anyone (the API later, plain SQL today) reaches
-- every running server within moments: a statement-level trigger sends one
-- NOTIFY per statement on channel opsc_refdata, payload = the table name
-- (PostgreSQL folds identical notifications of one transaction into one).
CREATE FUNCTION opsc_notify_refdata() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opsc_refdata', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER devices_notify_refdata
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_notify_refdata();

CREATE TRIGGER oid_mappings_notify_refdata
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON oid_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_notify_refdata();

CREATE TRIGGER dependencies_notify_refdata
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dependencies
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_notify_refdata();
