-- API tokens are checked in memory by every running server; a created or
-- revoked token reaches all of them within moments through NOTIFY
-- opsc_api_tokens (one per statement; the payload is not used).
CREATE FUNCTION opsc_notify_api_tokens() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opsc_api_tokens', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_notify_api_tokens();
