/*
 * The prompt templates of the picture job types (module 17), for POST queue-job/enhance.
 * A file of its own: the job_type values it uses were added by the previous migration and
 * may only be used once that transaction committed.
 */

insert into public.prompt_templates (job_type, version, instruction, hints, note, active) values
  ('text_to_image', 1,
   'Rewrite the user''s idea as one prompt for a text-to-image model: the subject in the '
   'user''s words first, then the composition, the light and a visual style where the user '
   'gave none. One sentence or two, no lists, at most 400 characters.',
   '{"max_chars": 400, "cues": [
      {"kind": "composition", "text": "balanced composition, one clear focal subject",
       "skip_if": ["composition", "close-up", "wide", "portrait", "landscape", "centered", "symmetry"]},
      {"kind": "lighting", "text": "soft natural light",
       "skip_if": ["light", "lighting", "lit", "sunset", "sunrise", "golden hour", "neon", "night"]},
      {"kind": "style", "text": "highly detailed, sharp focus",
       "skip_if": ["style", "photo", "photograph", "illustration", "drawing", "painting", "anime", "3d"]}]}',
   'initial version', true),
  ('image_to_image', 1,
   'Rewrite the user''s idea as one prompt that changes a given picture: say what to change '
   'in the user''s words first, and keep the picture''s subject and layout unless told '
   'otherwise. One sentence or two, at most 300 characters.',
   '{"max_chars": 300, "cues": [
      {"kind": "keep", "text": "keep the original composition",
       "skip_if": ["composition", "layout", "keep", "same"]}]}',
   'initial version', true)
on conflict (job_type, version) do nothing;
