-- Administrators of the whole server (web console): they create users and manage the members
-- of every workspace. Workspace roles (memberships.role) stay as they are.
ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;

-- The bootstrap admin is the first user of a store.
UPDATE users SET is_admin = true WHERE seq = (SELECT min(seq) FROM users);
