-- Users (with their roles and password hashes) and live login sessions are
-- checked in memory by every running server; a change made by another
-- instance or by plain SQL - a user disabled, a role changed, a session
-- revoked - reaches all of them within moments through NOTIFY opsc_auth
-- (one per statement; the payload is not used).
CREATE FUNCTION opsc_notify_auth() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opsc_auth', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_notify_auth();
CREATE TRIGGER user_roles_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON user_roles
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_notify_auth();
CREATE TRIGGER sessions_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_notify_auth();
