"""A composition of elements is checked before any money moves, every problem listed:
its shapes and what crosses elements (pydantic), then each element's file (the upload
check: the caller's own, present, the right kind, within 100 MB, a video that decodes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from videogen.errors import ValidationFailed
from videogen.integrations.storage import LocalStorage
from videogen.models.common import parse
from videogen.models.elements import Element
from videogen.models.jobs import GenerateVideoRequest, JobParams, QueueJobRequest
from videogen.services import uploads

ME = "00000000-0000-4000-8000-00000000000a"
OTHER = "00000000-0000-4000-8000-00000000000b"


def image(start: float, duration: float, **extra: Any) -> dict[str, Any]:
    return {"type": "image", "path": f"{ME}/a.png", "start": start, "duration": duration, **extra}


def problems(body: dict[str, Any], model: Any = GenerateVideoRequest) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse(model, body)
    details = caught.value.details or []
    fields = [d["field"] for d in details]
    assert len(fields) == len(set(fields)), fields  # one detail per problem
    return {d["field"]: d["message"] for d in details}


def compose(elements: list[Any], **params: Any) -> dict[str, Any]:
    return {"model": "reference/compose", "prompt": "a timeline", "elements": elements, **params}


def test_a_good_timeline_is_taken_as_given() -> None:
    body = compose(
        [
            image(0, 4, transitions={"in": {"kind": "fade", "duration": 0.5}}),
            image(3, 3, transitions={"in": {"kind": "crossfade", "duration": 1}}),
            {"type": "video", "path": f"{ME}/clip.webm", "start": 1, "duration": 2,
             "layer": 1, "position": {"x": 0.6, "y": 0.1}, "width": 0.3, "trim_start": 0.5},
            {"type": "text", "text": "Hello", "start": 0, "duration": 6, "color": "#ffcc00"},
            {"type": "text", "text": "Over it", "start": 1, "duration": 2},  # text may overlap
            {"type": "audio", "path": f"{ME}/song.mp3", "start": 0, "duration": 6,
             "transitions": {"out": {"kind": "fade", "duration": 2}}},
        ]
    )  # fmt: skip
    params = parse(GenerateVideoRequest, body).params()
    assert params["elements"][0]["transitions"] == {"in": {"kind": "fade", "duration": 0.5}}
    assert params["elements"][2]["position"] == {"x": 0.6, "y": 0.1}
    assert "duration" not in params  # priced by the timeline's length, in the database


def test_every_problem_is_listed_with_its_field() -> None:
    body = compose(
        [
            image(0, 4),
            {"type": "video", "path": f"{ME}/b.gif", "start": -1, "duration": 2},
            image(1, 2, transitions={"in": {"kind": "fadeblack", "duration": 1.5},
                                     "out": {"kind": "crossfade", "duration": 1}}),
            {"type": "text", "text": "  ", "start": 1, "duration": 700},
            {"type": "text", "text": "late", "start": 25, "duration": 10,
             "transitions": {"in": {"kind": "fadewhite"}}},
            {"type": "audio", "path": f"{ME}/a.flac", "start": 0, "duration": 2, "layer": 3},
            {"type": "image", "path": f"{ME}/c.bmp", "start": 0, "duration": 1, "layer": 5,
             "position": {"x": 1.5, "y": 0}},
            {"type": "sticker", "start": 0, "duration": 1},
            image(5, 2, layer=2, transitions={"in": {"kind": "crossfade", "duration": 1}}),
        ],
        duration=30,
        captions=True,
        sections=3,
    )  # fmt: skip
    found = problems(body)
    assert set(found) == {
        "elements.1.start",  # negative (shape): its other problems wait for a valid shape
        "elements.2.start",  # overlaps element 0 on layer 0
        "elements.2.transitions",  # 2.5 s of transitions in 2 s
        "elements.2.transitions.out.kind",  # a crossfade is an in
        "elements.3.text",  # blank
        "elements.3.duration",  # over 600 s
        "elements.4.duration",  # ends at 35 s, after the 30 s paid for
        "elements.4.transitions.in.kind",  # text fades through transparency only
        "elements.5.layer",  # audio has no layer
        "elements.6.position.x",  # off the frame
        "elements.7",  # no such element type
        "elements.8.transitions.in",  # nothing on layer 2 to crossfade from
        "captions",  # generated-video params mean nothing here
        "sections",
    }, found
    assert "overlaps element 0 on layer 0" in found["elements.2.start"]
    assert "after the duration of 30s" in found["elements.4.duration"]


def test_the_extension_says_the_kind_and_all_of_them_are_checked() -> None:
    elements = [
        {"type": "video", "path": f"{ME}/a.mkv", "start": 0, "duration": 1},
        {"type": "image", "path": f"{ME}/a.gif", "start": 1, "duration": 1},
        {"type": "audio", "path": f"{ME}/a.mp4", "start": 0, "duration": 1},
    ]
    found = problems(compose(elements))
    assert found == {
        "elements.0.path": "a video element takes mp4, mov, avi, webm files",
        "elements.1.path": "a image element takes png, jpg, jpeg, webp files",
        "elements.2.path": "a audio element takes mp3, m4a, wav, ogg files",
    }


def test_the_limits_of_a_timeline() -> None:
    too_many = [{"type": "text", "text": str(i), "start": i, "duration": 1} for i in range(11)]
    assert set(problems(compose(too_many))) == {"elements"}
    assert set(problems(compose([]))) == {"elements"}
    # Without a duration the longest timeline is the 600 s of the longest model.
    found = problems(compose([image(0, 400), image(400, 300)]))
    assert set(found) == {"elements.1.duration"}
    # Pictures on different layers may overlap; so may anything over a crossfade.
    parse(GenerateVideoRequest, compose([image(0, 4), image(1, 2, layer=1)]))


def test_queue_job_names_the_fields_under_params() -> None:
    body = {"model": "reference/compose", "params": {"elements": [image(0, 2), image(1, 2)]}}
    assert set(problems(body, QueueJobRequest)) == {"params.elements.1.start"}


# The upload check ----------------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    store = LocalStorage(tmp_path / "storage", "secret", "http://127.0.0.1:1")
    src = tmp_path / "src"
    src.mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-pix_fmt", "yuv420p",
           str(src / "clip.mp4"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1", str(src / "still.png"))
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", str(src / "tone.wav"))
    for name, kind in (("clip.mp4", "video/mp4"), ("still.png", "image/png"),
                       ("tone.wav", "audio/wav")):  # fmt: skip
        store.upload("uploads", f"{ME}/{name}", (src / name).read_bytes(), kind)
    store.upload("uploads", f"{OTHER}/clip.mp4", (src / "clip.mp4").read_bytes(), "video/mp4")
    # A still named as a video, and a video ffprobe reads (its index comes first) whose
    # picture is zeroed: it does not decode.
    store.upload("uploads", f"{ME}/still.mp4", (src / "still.png").read_bytes(), "video/mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", str(src / "indexed.mp4"))  # fmt: skip
    data = (src / "indexed.mp4").read_bytes()
    body = data.index(b"mdat") + 4
    store.upload("uploads", f"{ME}/cut.mp4", data[:body] + b"\0" * (len(data) - body), "video/mp4")
    # Over 100 MB, made sparse: the check refuses it by its size without reading it.
    store.upload("uploads", f"{ME}/huge.mp4", data, "video/mp4")
    local = store.local_path("uploads", f"{ME}/huge.mp4")
    assert local is not None
    with local.open("r+b") as f:
        f.truncate(100 * 1024 * 1024 + 1)
    return store


def element(kind: str, name: str, owner: str = ME, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "path": f"{owner}/{name}", "start": 0, "duration": 1, **extra}


def bag(elements: list[dict[str, Any]]) -> JobParams:
    """Request params with these elements, each of a valid shape, but not checked across
    elements nor by file name (the upload check must catch a file of the wrong kind
    whatever its name)."""
    return JobParams.model_construct(elements=TypeAdapter(list[Element]).validate_python(elements))


def test_good_element_files_pass(storage: LocalStorage) -> None:
    elements = [
        element("video", "clip.mp4", trim_start=0.5),
        element("image", "still.png", layer=1),
        element("audio", "tone.wav"),
        {"type": "text", "text": "no file", "start": 0, "duration": 1},
    ]
    uploads.check_uploads(storage, ME, bag(elements))


def test_every_unusable_element_file_is_listed(storage: LocalStorage) -> None:
    elements = [
        element("video", "clip.mp4"),  # fine
        element("video", "clip.mp4", owner=OTHER),  # someone else's
        element("video", "absent.mp4"),  # missing
        element("video", "still.mp4"),  # wrong kind: a picture
        element("image", "clip.mp4"),  # wrong kind: a video as an image
        element("audio", "still.png"),  # wrong kind: no sound
        element("video", "huge.mp4"),  # too large
        element("video", "cut.mp4"),  # does not decode
        element("video", "clip.mp4", trim_start=5),  # starts past its end
    ]
    with pytest.raises(ValidationFailed) as caught:
        uploads.check_uploads(storage, ME, bag(elements))
    error = caught.value
    found = {d["field"]: (d["code"], d["message"]) for d in error.details or []}
    assert set(found) == {f"params.elements.{i}.path" for i in range(1, 9)}, found
    assert found["params.elements.1.path"][0] == "INVALID_PARAMS"
    assert "not in your uploads folder" in found["params.elements.1.path"][1]
    assert found["params.elements.2.path"][0] == "UPLOAD_NOT_FOUND"
    assert all(found[f"params.elements.{i}.path"][0] == "INVALID_UPLOAD" for i in range(3, 9))
    assert "not an mp4, mov, avi or webm video" in found["params.elements.3.path"][1]
    assert "not audio" in found["params.elements.5.path"][1]
    assert "over 100 MB" in found["params.elements.6.path"][1]
    assert "does not decode" in found["params.elements.7.path"][1]
    assert "past the video's end" in found["params.elements.8.path"][1]
    assert error.code == "INVALID_PARAMS"  # the first problem's
    assert error.message.startswith("8 uploads are not usable")
