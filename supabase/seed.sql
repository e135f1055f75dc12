-- The model catalogue a fresh project starts with. Prices are credits; a job costs
-- ceil((credits_base + credits_per_second × duration) × resolution factor).

insert into public.models
  (id, name, description, provider, provider_model_id, job_type, credits_base,
   credits_per_second, min_duration_s, max_duration_s, default_duration_s, aspect_ratios,
   resolutions, requires_image, max_attempts, lease_seconds, category, featured,
   typical_run_seconds)
values
  ('reference/text-to-video', 'Reference text-to-video',
   'Our own GPU worker (the reference worker renders locally with ffmpeg).',
   'reference', 'reference-t2v', 'text_to_video', 2, 1, 1, 30, 5,
   '{16:9,9:16,1:1}', '{480p,720p,1080p}', false, 3, 60, 'text-to-video', true, 8),
  ('reference/image-to-video', 'Reference image-to-video',
   'Animates an uploaded still (Ken Burns) on our own worker.',
   'reference', 'reference-i2v', 'image_to_video', 3, 1, 1, 30, 5,
   '{16:9,9:16,1:1}', '{480p,720p,1080p}', true, 3, 60, 'image-to-video', true, 8),
  ('reference/compose', 'Composed explainer video',
   'Script, narration, images and one ffmpeg render.',
   'reference', 'reference-compose', 'compose', 5, 1, 5, 600, 60,
   '{16:9,9:16,1:1,4:5}', '{480p,720p,1080p}', false, 2, 300, 'explainer', true, 90),
  ('runpod/wan-2.1-t2v', 'Wan 2.1 text-to-video (RunPod)',
   'Our Wan 2.1 endpoint on RunPod serverless.',
   'runpod', 'wan-t2v-endpoint', 'text_to_video', 10, 4, 2, 10, 5,
   '{16:9,9:16,1:1}', '{480p,720p}', false, 3, 600, 'text-to-video', false, 120),
  ('fal/kling-video-v2.1', 'Kling 2.1 (fal)', 'Kling text-to-video through fal''s queue API.',
   'fal', 'fal-ai/kling-video/v2.1/standard/text-to-video', 'text_to_video', 20, 8, 5, 10, 5,
   '{16:9,9:16,1:1}', '{720p}', false, 2, 900, 'text-to-video', true, 180),
  ('replicate/minimax-video-01', 'MiniMax Video-01 (Replicate)',
   'Hailuo text-to-video through Replicate predictions.',
   'replicate', 'minimax/video-01', 'text_to_video', 25, 0, 6, 6, 6,
   '{16:9}', '{720p}', false, 2, 900, 'text-to-video', false, 240),
  ('runway/gen4-turbo', 'Runway Gen-4 Turbo', 'Image-to-video through the Runway API.',
   'runway', 'gen4_turbo', 'image_to_video', 10, 5, 5, 10, 5,
   '{16:9,9:16,1:1}', '{720p}', true, 2, 900, 'image-to-video', false, 90)
on conflict (id) do nothing;

-- The creation wizard's steps (videogen.steps): each a job with its own price, run inside
-- the request. `duration` is the video's length the step is for (narration: at most).
insert into public.models
  (id, name, description, provider, provider_model_id, job_type, credits_base,
   credits_per_second, resolution_factors, min_duration_s, max_duration_s,
   default_duration_s, max_attempts, lease_seconds, category, featured, typical_run_seconds)
values
  ('reference/script', 'Script writer',
   'Writes a script from a topic, or improves one with an instruction (offline, or OpenAI).',
   'reference', 'reference-script', 'script', 1, 0, '{"480p": 1, "720p": 1, "1080p": 1}',
   5, 600, 60, 1, 60, 'wizard', false, 2),
  ('reference/narration', 'Narrator',
   'Reads a script aloud: one audio file per section with its timings (espeak-ng, or Google).',
   'reference', 'reference-narration', 'narration', 2, 0, '{"480p": 1, "720p": 1, "1080p": 1}',
   1, 600, 60, 1, 60, 'wizard', false, 3),
  ('reference/images', 'Section pictures',
   'One picture per section: a title card, or a stock photo (Pexels or Unsplash).',
   'reference', 'reference-images', 'images', 2, 0, '{"480p": 1, "720p": 1, "1080p": 1}',
   5, 600, 60, 1, 60, 'wizard', false, 3)
on conflict (id) do nothing;

-- Narration voices: `<engine>:<the engine's voice name>`; a job's `voice` param takes the
-- part after the colon. espeak-ng is the offline engine, Google Cloud TTS the hosted one.
insert into public.voices (id, engine, language, name, gender, description)
values
  ('espeak:en-us', 'espeak', 'en-US', 'English (America)', 'male', 'Offline, instant.'),
  ('espeak:en-gb', 'espeak', 'en-GB', 'English (Great Britain)', 'male', 'Offline, instant.'),
  ('espeak:fr', 'espeak', 'fr', 'French', 'male', 'Offline, instant.'),
  ('espeak:de', 'espeak', 'de', 'German', 'male', 'Offline, instant.'),
  ('espeak:es', 'espeak', 'es', 'Spanish (Spain)', 'male', 'Offline, instant.'),
  ('espeak:it', 'espeak', 'it', 'Italian', 'male', 'Offline, instant.'),
  ('espeak:pt', 'espeak', 'pt', 'Portuguese (Portugal)', 'male', 'Offline, instant.'),
  ('google:en-US-Neural2-C', 'google', 'en-US', 'Neural2 C', 'female', 'Google Cloud TTS.'),
  ('google:en-US-Neural2-D', 'google', 'en-US', 'Neural2 D', 'male', 'Google Cloud TTS.'),
  ('google:en-GB-Neural2-A', 'google', 'en-GB', 'Neural2 A', 'female', 'Google Cloud TTS.'),
  ('google:fr-FR-Neural2-A', 'google', 'fr-FR', 'Neural2 A', 'female', 'Google Cloud TTS.'),
  ('google:de-DE-Neural2-B', 'google', 'de-DE', 'Neural2 B', 'male', 'Google Cloud TTS.'),
  ('google:es-ES-Neural2-A', 'google', 'es-ES', 'Neural2 A', 'female', 'Google Cloud TTS.')
on conflict (id) do nothing;
