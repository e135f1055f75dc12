-- Migration realtime_publication: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none.


-- By hand (the draft does not diff publications): the tables a frontend follows with
-- Realtime postgres_changes. supabase_realtime is created empty by the platform; a project
-- adds its tables. Each subscriber receives only the rows its RLS lets it select.
alter publication supabase_realtime add table public.profiles, public.projects, public.batches;
