-- Osprey catalog, version 7: every user has an identity of its own (issue 20).
-- Handles a user holds (tickets, prepared statements, HTTP and Trino queries) are bound to this
-- id, not to the name: a user dropped and created again under the same name gets a new id and
-- none of the old user's handles. New users get a random id; users created before this
-- version get one made of their name and creation time.

ALTER TABLE osprey_users ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
UPDATE osprey_users SET user_id = user_name || '@' || CAST(created_at_ms AS TEXT) WHERE user_id = '';
