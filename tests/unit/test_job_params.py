"""One params model per job type (videogen.models.params): each has exactly the keys the
database takes for its type (``private.job_type_params``), the request bag's bounds and
descriptions, refuses another type's keys, and reads today's params as they are stored."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from videogen.errors import ValidationFailed
from videogen.models.jobs import JobParams
from videogen.models.params import (
    NORMALISED,
    PARAMS_MODELS,
    ComposeParams,
    ImagesParams,
    ImageToVideoParams,
    NarrationParams,
    ScriptParams,
    TextToVideoParams,
    params_for,
)

UID = "00000000-0000-4000-8000-000000000001"
SCRIPT = {
    "title": "Tides",
    "sections": [
        {"title": "Pull", "narration": "The moon pulls the sea.", "image_prompt": "the moon"},
        {"title": "Rise", "narration": "Twice a day it rises. Then it falls."},
    ],
}
TIMINGS = [
    {"index": 0, "title": "Pull", "path": f"{UID}/steps/x/narration_00.wav", "speech_s": 1.2,
     "start_s": 0.0, "duration_s": 1.9},
    {"index": 1, "title": "Rise", "path": f"{UID}/steps/x/narration_01.wav", "speech_s": 2.0,
     "start_s": 1.9, "duration_s": 2.7},
]  # fmt: skip
ELEMENTS = [  # tests/media/test_media_elements.py
    {"type": "text", "text": "ELEMENTS", "start": 0.5, "duration": 2.0,
     "position": {"x": 0.05, "y": 0.05}, "font_size": 0.1, "color": "yellow", "layer": 2},
    {"type": "video", "path": f"{UID}/blue.mp4", "start": 1.5, "duration": 1.6,
     "position": {"x": 0.5, "y": 0.5}, "width": 0.4, "layer": 1,
     "transitions": {"out": {"kind": "fadeblack", "duration": 0.4}}},
    {"type": "image", "path": f"{UID}/red.png", "start": 0, "duration": 4,
     "transitions": {"in": {"kind": "fade", "duration": 0.4}}},
    {"type": "audio", "path": f"{UID}/tone.wav", "start": 0.5, "duration": 1.5},
]  # fmt: skip

# Params the existing tests send, by the model that takes them.
VALID: list[tuple[str, dict[str, Any]]] = [
    ("reference/text-to-video", {"prompt": "a fox", "duration": 3}),
    ("reference/text-to-video", {"prompt": "A paper boat", "negative_prompt": "blur",
                                 "aspect_ratio": "9:16", "resolution": "480p", "seed": 7,
                                 "fps": 24, "original_prompt": "boat"}),
    ("reference/image-to-video", {"prompt": "a paper boat", "image_path": f"{UID}/still.png",
                                  "duration": 5}),
    ("reference/compose", {"prompt": "Rivers", "sections": 1, "resolution": "480p",
                           "duration": 5, "script": SCRIPT}),
    ("reference/compose", {"prompt": "Tides", "script": SCRIPT, "voice": "en-gb",
                           "language": "en", "speaking_rate": 1.2, "captions": False,
                           "images": [f"{UID}/a.png", None], "music_path": f"{UID}/song.mp3",
                           "narration_paths": [f"{UID}/steps/x/narration_00.wav",
                                               f"{UID}/steps/x/narration_01.wav"]}),
    ("reference/compose", {"prompt": "elements", "resolution": "480p", "aspect_ratio": "16:9",
                           "fps": 25, "elements": ELEMENTS}),
    ("reference/script", {"prompt": "How ocean tides work", "sections": 3}),
    ("reference/script", {"script": SCRIPT, "instruction": "make it shorter"}),
    ("reference/narration", {"script": SCRIPT, "duration": 60}),
    ("reference/narration", {"prompt": "Read me aloud.", "voice": "en-gb",
                             "speaking_rate": 1.5}),
    ("reference/images", {"script": SCRIPT, "source": "card", "timings": TIMINGS}),
    ("reference/images", {"script": SCRIPT, "source": "stock", "aspect_ratio": "16:9",
                          "resolution": "720p"}),
]  # fmt: skip


def test_each_type_s_model_has_exactly_the_keys_the_database_takes(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select t::text, private.job_type_params(t)"
            "  from unnest(enum_range(null::public.job_type)) t"
        ).fetchall()
    taken = {job_type: set(keys) for job_type, keys in rows}
    assert set(taken) == set(PARAMS_MODELS)
    for job_type, keys in taken.items():
        assert set(PARAMS_MODELS[job_type].model_fields) == keys, job_type


def test_the_models_fields_are_the_request_bag_s() -> None:
    """Same types, bounds and descriptions as JobParams (``topic`` only the database takes;
    ``section_clips`` are stored with what the database adds to each: its job, status and
    video)."""
    bag = JobParams.model_json_schema()
    for model in PARAMS_MODELS.values():
        schema = model.model_json_schema()
        for name, field in model.model_fields.items():
            if name in ("topic", "section_clips"):
                continue
            assert field.annotation == JobParams.model_fields[name].annotation, (model, name)
            assert schema["properties"][name] == bag["properties"][name], (model, name)


def _other_keys(job_type: str) -> set[str]:
    every = {k for m in PARAMS_MODELS.values() for k in m.model_fields}
    return every - set(PARAMS_MODELS[job_type].model_fields)


@pytest.mark.parametrize("job_type", sorted(PARAMS_MODELS))
def test_each_type_refuses_another_type_s_keys(job_type: str) -> None:
    model = PARAMS_MODELS[job_type]
    others = _other_keys(job_type)
    assert others
    for key in others:
        with pytest.raises(ValidationError) as caught:
            model.model_validate({"prompt": "x", key: 1})
        assert [e["type"] for e in caught.value.errors()] == ["extra_forbidden"], key
        if key in NORMALISED:
            continue  # what the database adds to every job is left out when read
        with pytest.raises(ValidationFailed) as failed:
            params_for(job_type, {"prompt": "x", key: 1})
        assert failed.value.code == "INVALID_PARAMS"
        assert [d["field"] for d in failed.value.details or []] == [f"params.{key}"]


def test_unknown_keys_and_types_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        params_for("text_to_video", {"prompt": "x", "colour": "red"})
    with pytest.raises(ValidationFailed):
        params_for("hologram", {"prompt": "x"})


@pytest.mark.parametrize(("model_id", "params"), VALID)
def test_today_s_params_are_read_as_stored(
    db_url: str, model_id: str, params: dict[str, Any]
) -> None:
    """What the request bag accepts, normalised by the database as a job stores it, reads
    as the job type's model with the same values."""
    given = JobParams.model_validate(params).params()
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select m.job_type::text, private.normalize_params(m, %s)"
            "  from public.models m where m.id = %s",
            (Jsonb(given), model_id),
        ).fetchone()
    assert row is not None
    job_type, stored = row
    typed = params_for(job_type, stored)
    assert type(typed) is PARAMS_MODELS[job_type]
    dumped = typed.model_dump(exclude_none=True, by_alias=True)
    expected = {k: v for k, v in stored.items() if k in type(typed).model_fields}
    assert dumped == expected
    assert set(stored) - set(dumped) <= set(NORMALISED)  # only what every job gets


def test_the_types_read_as_attributes() -> None:
    t2v = params_for("text_to_video", {"prompt": " a fox ", "duration": 3, "seed": "42"})
    assert isinstance(t2v, TextToVideoParams) and (t2v.prompt, t2v.seed) == ("a fox", 42)
    i2v = params_for("image_to_video", {"image_path": f"{UID}/still.png"})
    assert isinstance(i2v, ImageToVideoParams) and i2v.image_path == f"{UID}/still.png"
    compose = ComposeParams.stored({"elements": ELEMENTS, "duration": 4})
    assert compose.elements is not None and compose.elements[1].type == "video"
    narration = NarrationParams.stored({"script": SCRIPT, "aspect_ratio": "16:9"})
    assert narration.script is not None and narration.script.title == "Tides"
    script = ScriptParams.stored({"topic": "Tides", "resolution": "720p"})
    assert script.topic == "Tides"
    images = ImagesParams.stored({"script": SCRIPT, "timings": TIMINGS})
    assert images.timings is not None and images.timings[1].start_s == 1.9


def test_a_compose_job_s_timeline_is_checked_as_at_the_door() -> None:
    """Generated-video params beside elements, and elements across each other."""
    overlapping = [dict(ELEMENTS[2]), {**ELEMENTS[2], "start": 1}]
    with pytest.raises(ValidationFailed) as caught:
        ComposeParams.stored({"elements": overlapping, "script": SCRIPT})
    fields = {d["field"] for d in caught.value.details or []}
    assert fields == {"params.script", "params.elements.1.start"}
