-- 002: pair the seeded linkDown / linkUp mappings (issue 3 item 5).
--
-- Seed 000 inserts link_down and link_up but leaves out what ties them
-- together: nothing says that a linkUp clears a linkDown, and link_up is not
-- flagged as a clear event (only its default_severity says 'clear'). With
-- the pairing, a linkUp resolves the active link_down alert of the same
-- device and interface (same discriminator, the ifIndex) and opens no alert
-- of its own.
--
-- Only the generic rows are touched (vendor IS NULL): a vendor-specific row
-- an operator added keeps whatever pairing it was given. The runner wraps
-- this file in a transaction.

UPDATE oid_mappings
   SET clear_oid_pattern = '1.3.6.1.6.3.1.1.5.4'
 WHERE oid_pattern = '1.3.6.1.6.3.1.1.5.3'
   AND vendor IS NULL;

UPDATE oid_mappings
   SET is_clear_event = TRUE
 WHERE oid_pattern = '1.3.6.1.6.3.1.1.5.4'
   AND vendor IS NULL;
