/*
 * Module 12: the storage buckets and who may touch which object.
 *
 * Four private buckets with Supabase's own limits (the Storage API enforces them on
 * upload: 413 over file_size_limit, 415 outside allowed_mime_types):
 *   uploads     users' still images, music beds (compose jobs' `music_path`) and the
 *               videos, images and sounds of element compositions (`elements`); the
 *               narration step's WAVs and their word timings (`….words.json`)
 *   videos      rendered videos and their  } outputs: only the service (service_role,
 *               other forms (webm, gif,    }  which bypasses RLS) writes them
 *               mp3, poster, vtt, srt)     }
 *   images      generated still pictures   }
 *   thumbnails  their small previews       }
 *
 * Every object lives under its owner's folder, `<user uid>/…`, which is all the policies
 * check: storage.foldername(name)[1] is that first folder. Supabase Storage runs each
 * request's insert / select / update / delete on storage.objects as the caller's role
 * with its claims, so these policies are the whole access model, locally and hosted.
 *
 * Runs on a real Supabase project as well: the storage schema exists there, so this only
 * adds rows and policies (no tables, no grants on storage).
 */

-- ===================================================================================
-- Buckets (idempotent: re-running resets them to these settings)
-- ===================================================================================

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values
  ('uploads', 'uploads', false, 104857600,
   array['image/png', 'image/jpeg', 'image/webp',
         'audio/mpeg', 'audio/mp4', 'audio/wav', 'audio/x-wav', 'audio/ogg',
         'video/mp4', 'video/quicktime', 'video/x-msvideo', 'video/avi', 'video/webm',
         'application/json']),
  ('videos', 'videos', false, 1073741824,
   array['video/mp4', 'video/webm', 'image/gif', 'audio/mpeg', 'image/png', 'image/jpeg',
         'text/vtt', 'application/x-subrip']),
  ('images', 'images', false, 52428800, array['image/png', 'image/jpeg', 'image/webp']),
  ('thumbnails', 'thumbnails', false, 5242880, array['image/jpeg', 'image/png', 'image/webp'])
on conflict (id) do update
  set name = excluded.name,
      public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;


-- ===================================================================================
-- Policies on storage.objects
-- ===================================================================================

drop policy if exists "Users upload into their own folder in uploads" on storage.objects;
create policy "Users upload into their own folder in uploads" on storage.objects
  for insert to authenticated
  with check (
    bucket_id = 'uploads'
    and (storage.foldername(name))[1] = (select auth.uid())::text
  );

drop policy if exists "Users read their own uploads" on storage.objects;
create policy "Users read their own uploads" on storage.objects
  for select to authenticated
  using (
    bucket_id = 'uploads'
    and (storage.foldername(name))[1] = (select auth.uid())::text
  );

drop policy if exists "Users replace their own uploads" on storage.objects;
create policy "Users replace their own uploads" on storage.objects
  for update to authenticated
  using (
    bucket_id = 'uploads'
    and (storage.foldername(name))[1] = (select auth.uid())::text
  )
  with check (
    bucket_id = 'uploads'
    and (storage.foldername(name))[1] = (select auth.uid())::text
  );

drop policy if exists "Users delete their own uploads" on storage.objects;
create policy "Users delete their own uploads" on storage.objects
  for delete to authenticated
  using (
    bucket_id = 'uploads'
    and (storage.foldername(name))[1] = (select auth.uid())::text
  );

drop policy if exists "Users read their own videos and thumbnails" on storage.objects;
create policy "Users read their own videos and thumbnails" on storage.objects
  for select to authenticated
  using (
    bucket_id in ('videos', 'images', 'thumbnails')
    and (storage.foldername(name))[1] = (select auth.uid())::text
  );

-- videos, images and thumbnails: no insert, update or delete policy — only service_role writes.
