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

-- Still pictures (text_to_image, image_to_image): no length, priced by credits_base times
-- the resolution's factor. The reference engine draws them offline on our own worker.
insert into public.models
  (id, name, description, provider, provider_model_id, job_type, credits_base,
   credits_per_second, resolution_factors, min_duration_s, max_duration_s,
   default_duration_s, aspect_ratios, resolutions, requires_image, max_attempts,
   lease_seconds, category, featured, typical_run_seconds)
values
  ('reference/text-to-image', 'Reference text-to-image',
   'A picture drawn from the prompt on our own worker (offline, the same prompt and seed give the same picture).',
   'reference', 'reference-t2i', 'text_to_image', 1, 0, '{"480p": 1, "720p": 1, "1080p": 2}',
   1, 1, 1, '{1:1,16:9,9:16}', '{480p,720p,1080p}', false, 3, 60, 'text-to-image', true, 3),
  ('reference/image-to-image', 'Reference image-to-image',
   'Repaints an uploaded picture with the prompt''s composition on our own worker.',
   'reference', 'reference-i2i', 'image_to_image', 1, 0, '{"480p": 1, "720p": 1, "1080p": 2}',
   1, 1, 1, '{1:1,16:9,9:16}', '{480p,720p,1080p}', true, 3, 60, 'image-to-image', true, 3),
  ('fal/flux-dev', 'FLUX.1 [dev] (fal)', 'Black Forest Labs'' FLUX.1 [dev] through fal''s queue API.',
   'fal', 'fal-ai/flux/dev', 'text_to_image', 4, 0, '{"480p": 1, "720p": 1.5, "1080p": 2}',
   1, 1, 1, '{1:1,16:9,9:16}', '{480p,720p,1080p}', false, 2, 300, 'text-to-image', true, 15),
  ('fal/flux-schnell', 'FLUX.1 [schnell] (fal)', 'The fast FLUX.1 through fal''s queue API.',
   'fal', 'fal-ai/flux/schnell', 'text_to_image', 1, 0, '{"480p": 1, "720p": 1, "1080p": 2}',
   1, 1, 1, '{1:1,16:9,9:16}', '{480p,720p,1080p}', false, 2, 300, 'text-to-image', false, 5),
  ('fal/flux-dev-image-to-image', 'FLUX.1 [dev] image-to-image (fal)',
   'Repaints an uploaded picture with FLUX.1 [dev] through fal.',
   'fal', 'fal-ai/flux/dev/image-to-image', 'image_to_image', 4, 0,
   '{"480p": 1, "720p": 1.5, "1080p": 2}', 1, 1, 1, '{1:1,16:9,9:16}', '{480p,720p,1080p}',
   true, 2, 300, 'image-to-image', false, 15),
  ('fal/fast-sdxl', 'Stable Diffusion XL (fal)', 'SDXL through fal''s queue API.',
   'fal', 'fal-ai/fast-sdxl', 'text_to_image', 2, 0, '{"480p": 1, "720p": 1, "1080p": 2}',
   1, 1, 1, '{1:1,16:9,9:16}', '{480p,720p,1080p}', false, 2, 300, 'text-to-image', false, 10),
  ('replicate/flux-schnell', 'FLUX.1 [schnell] (Replicate)',
   'The fast FLUX.1 through Replicate predictions (about one megapixel, in the ratio asked).',
   'replicate', 'black-forest-labs/flux-schnell', 'text_to_image', 1, 0,
   '{"480p": 1, "720p": 1, "1080p": 1}', 1, 1, 1, '{1:1,16:9,9:16}', '{1080p}', false, 2, 300,
   'text-to-image', false, 5)
on conflict (id) do nothing;

-- The models the seeds name (seed 003: Veo 3.1 and Sora 2 through fal; Runway).
insert into public.models
  (id, name, description, provider, provider_model_id, job_type, credits_base,
   credits_per_second, min_duration_s, max_duration_s, default_duration_s, aspect_ratios,
   resolutions, requires_image, max_attempts, lease_seconds, category, featured,
   typical_run_seconds)
values
  ('fal/veo3', 'Veo 3 (fal)', 'Google Veo 3 with sound, through fal: 4, 6 or 8 s.',
   'fal', 'fal-ai/veo3', 'text_to_video', 10, 40, 4, 8, 8,
   '{16:9,9:16}', '{720p,1080p}', false, 2, 1800, 'text-to-video', false, 180),
  ('fal/veo3.1', 'Veo 3.1 (fal)', 'Google Veo 3.1 with sound, through fal: 4, 6 or 8 s.',
   'fal', 'fal-ai/veo3.1', 'text_to_video', 10, 40, 4, 8, 8,
   '{16:9,9:16}', '{720p,1080p}', false, 2, 1800, 'text-to-video', true, 180),
  ('fal/veo3.1-image-to-video', 'Veo 3.1 image-to-video (fal)',
   'Google Veo 3.1 animates an uploaded still, through fal: 4, 6 or 8 s.',
   'fal', 'fal-ai/veo3.1/image-to-video', 'image_to_video', 10, 40, 4, 8, 8,
   '{16:9,9:16}', '{720p,1080p}', true, 2, 1800, 'image-to-video', true, 180),
  ('fal/sora-2', 'Sora 2 (fal)', 'OpenAI Sora 2 with sound, through fal: 4, 8 or 12 s.',
   'fal', 'fal-ai/sora-2/text-to-video', 'text_to_video', 0, 10, 4, 12, 4,
   '{16:9,9:16}', '{720p}', false, 2, 1800, 'text-to-video', true, 180),
  ('fal/sora-2-image-to-video', 'Sora 2 image-to-video (fal)',
   'OpenAI Sora 2 animates an uploaded still, through fal: 4, 8 or 12 s.',
   'fal', 'fal-ai/sora-2/image-to-video', 'image_to_video', 0, 10, 4, 12, 4,
   '{16:9,9:16}', '{720p}', true, 2, 1800, 'image-to-video', false, 180),
  ('runway/gen4.5', 'Runway Gen-4.5', 'Text-to-video through the Runway API: 2 to 10 s.',
   'runway', 'gen4.5', 'text_to_video', 10, 6, 2, 10, 5,
   '{16:9,9:16}', '{720p}', false, 2, 900, 'text-to-video', false, 120)
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
