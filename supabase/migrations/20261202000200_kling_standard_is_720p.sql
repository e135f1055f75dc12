-- fal's Kling 2.1 *standard* renders 720p only; the catalogue offered (and priced) 1080p,
-- which came out at 720p. Existing projects lose the 1080p option (fresh ones get it from
-- the seed).
update public.models set resolutions = '{720p}'
 where id = 'fal/kling-video-v2.1' and resolutions = '{720p,1080p}';
