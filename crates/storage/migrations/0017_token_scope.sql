-- Scoped service tokens: a token may be limited to one project of its workspace
-- (`project_id`) and to reads (`read_only`). A token scoped to a project goes with it:
-- deleting the project deletes the token (ON DELETE CASCADE), and transferring the project
-- to another workspace deletes the token in the same transaction (storage::projects::
-- set_workspace), so a scoped token never reaches anything outside its project.
ALTER TABLE service_tokens
    ADD COLUMN project_id text REFERENCES projects (id) ON DELETE CASCADE,
    ADD COLUMN read_only  boolean NOT NULL DEFAULT false;
CREATE INDEX service_tokens_project ON service_tokens (project_id) WHERE project_id IS NOT NULL;
