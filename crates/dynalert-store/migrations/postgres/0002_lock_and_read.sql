-- A batch of writes takes its paths' locks and reads their documents in one round trip.
-- The locks are taken in lock-key order, so two batches (of this replica or another) never
-- each wait for a lock the other holds. The read is a statement of its own, after the locks:
-- a VOLATILE function gives each statement a fresh snapshot, so it sees every write that
-- committed while the batch waited for a lock.
CREATE FUNCTION dynalert_lock_and_read(paths TEXT[])
RETURNS TABLE (path TEXT, content TEXT, revision BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1, keys.key)
    FROM (SELECT DISTINCT hashtext(p) AS key FROM unnest(paths) AS p ORDER BY key) AS keys;
    RETURN QUERY
        SELECT d.path, d.content, d.revision FROM documents AS d WHERE d.path = ANY(paths);
END
$$;
