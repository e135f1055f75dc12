-- The model catalogue a fresh project starts with. Prices are credits; a job costs
-- ceil((credits_base + credits_per_second × duration) × resolution factor).

insert into public.models
  (id, name, description, provider, provider_model_id, job_type, credits_base,
   credits_per_second, min_duration_s, max_duration_s, default_duration_s, aspect_ratios,
   resolutions, requires_image, max_attempts, lease_seconds)
values
  ('reference/text-to-video', 'Reference text-to-video',
   'Our own GPU worker (the reference worker renders locally with ffmpeg).',
   'reference', 'reference-t2v', 'text_to_video', 2, 1, 1, 30, 5,
   '{16:9,9:16,1:1}', '{480p,720p,1080p}', false, 3, 60),
  ('reference/image-to-video', 'Reference image-to-video',
   'Animates an uploaded still (Ken Burns) on our own worker.',
   'reference', 'reference-i2v', 'image_to_video', 3, 1, 1, 30, 5,
   '{16:9,9:16,1:1}', '{480p,720p,1080p}', true, 3, 60),
  ('reference/compose', 'Composed explainer video',
   'Script, narration, images and one ffmpeg render.',
   'reference', 'reference-compose', 'compose', 5, 1, 5, 600, 60,
   '{16:9,9:16,1:1}', '{480p,720p,1080p}', false, 2, 300),
  ('runpod/wan-2.1-t2v', 'Wan 2.1 text-to-video (RunPod)',
   'Our Wan 2.1 endpoint on RunPod serverless.',
   'runpod', 'wan-t2v-endpoint', 'text_to_video', 10, 4, 2, 10, 5,
   '{16:9,9:16,1:1}', '{480p,720p}', false, 3, 600),
  ('fal/kling-video-v2.1', 'Kling 2.1 (fal)', 'Kling text-to-video through fal''s queue API.',
   'fal', 'fal-ai/kling-video/v2.1/standard/text-to-video', 'text_to_video', 20, 8, 5, 10, 5,
   '{16:9,9:16,1:1}', '{720p}', false, 2, 900),
  ('replicate/minimax-video-01', 'MiniMax Video-01 (Replicate)',
   'Hailuo text-to-video through Replicate predictions.',
   'replicate', 'minimax/video-01', 'text_to_video', 25, 0, 6, 6, 6,
   '{16:9}', '{720p}', false, 2, 900),
  ('runway/gen4-turbo', 'Runway Gen-4 Turbo', 'Image-to-video through the Runway API.',
   'runway', 'gen4_turbo', 'image_to_video', 10, 5, 5, 10, 5,
   '{16:9,9:16,1:1}', '{720p}', true, 2, 900)
on conflict (id) do nothing;
