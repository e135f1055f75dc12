"""The ffmpeg graph builders, compared as data: no process is started here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from videogen.media.graph import (
    DEFAULT_FONT,
    GLOBAL_ARGS,
    caption_filters,
    compile_timeline,
    find_font,
    thumbnail_args,
    title_card_args,
    wrap_caption,
)
from videogen.media.timeline import (
    AudioClip,
    ImageClip,
    OutputPreset,
    TextClip,
    Timeline,
    Track,
    Transition,
    VideoClip,
)

FONT = Path("/fonts/Sans.ttf")
OUT = Path("/out/video.mp4")
P480 = OutputPreset(quality="480p")


def make(*tracks: Track, **kw: Any) -> Timeline:
    return Timeline(output=kw.pop("output", P480), tracks=list(tracks), **kw)


def stills(*durations: float, **clip: Any) -> Track:
    clips, t = [], 0.0
    for i, d in enumerate(durations):
        clips.append(ImageClip(start=t, duration=d, source=Path(f"/in/{i}.png"), **clip))
        t += d
    return Track(kind="video", clips=clips)


def graph_of(timeline: Timeline) -> list[str]:
    """The filter_complex as a list of ``name=options`` filters, labels removed."""
    args = compile_timeline(timeline, OUT, font=FONT).args
    spec = args[args.index("-filter_complex") + 1]
    return [re.sub(r"\[(s\d+|\d+(:[av])?)\]", "", f) for f in re.split(r"(?<!\\);", spec)]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def named(graph: list[str], name: str) -> list[str]:
    return [f for f in graph if f.split("=", 1)[0] == name]


def test_a_minimal_render_compiles_to_exactly_these_arguments() -> None:
    timeline = make(
        stills(2, ken_burns=False),
        Track(kind="audio", clips=[AudioClip(start=0.5, duration=1, source=Path("/in/v.wav"))]),
    )
    plan = compile_timeline(timeline, OUT, font=FONT)
    assert plan.duration == 2
    assert plan.output == OUT
    assert plan.inputs == [Path("/in/0.png"), Path("/in/v.wav")]
    assert plan.args == [
        *GLOBAL_ARGS,
        "-i", "/in/0.png",
        "-i", "/in/v.wav",
        "-filter_complex",
        "[0]scale=854:480:force_original_aspect_ratio=increase[s0];"
        "[s0]crop=854:480[s1];"
        "[s1]loop=loop=59:size=1:start=0[s2];"
        "[s2]setpts=N/30/TB[s3];"
        "[s3]setsar=1[s4];"
        "[s4]format=yuv420p[s5];"
        "[s5]settb=1/30[s6];"
        "[s6]setpts=PTS-STARTPTS[s7];"
        "[1:a]atrim=duration=1.0[s8];"
        "[s8]asetpts=PTS-STARTPTS[s9];"
        "[s9]aresample=48000[s10];"
        "[s10]aformat=channel_layouts=stereo:sample_fmts=fltp[s11];"
        "[s11]adelay=all=1:delays=500[s12];"
        "[s12]apad=whole_dur=2.0[s13];"
        "[s13]loudnorm=I=-16.0:LRA=11:TP=-1.5[s14];"
        "[s14]aresample=48000[s15];"
        "[s15]atrim=duration=2.0[s16]",
        "-map", "[s7]",
        "-map", "[s16]",
        "-ac", "2",
        "-acodec", "aac",
        "-ar", "48000",
        "-b:a", "128k",
        "-crf", "23",
        "-movflags", "+faststart",
        "-pix_fmt", "yuv420p",
        "-preset", "veryfast",
        "-r", "30",
        "-t", "2.000000",
        "-vcodec", "libx264",
        "/out/video.mp4",
    ]  # fmt: skip


def test_output_is_h264_aac_yuv420p_with_faststart() -> None:
    args = compile_timeline(make(stills(2)), OUT, font=FONT).args
    assert args[: len(GLOBAL_ARGS)] == list(GLOBAL_ARGS)
    assert option(args, "-vcodec") == "libx264"
    assert option(args, "-acodec") == "aac"
    assert option(args, "-pix_fmt") == "yuv420p"
    assert option(args, "-movflags") == "+faststart"
    assert args[-1] == str(OUT)


def test_ken_burns_zooms_over_exactly_the_frames_of_each_still() -> None:
    graph = graph_of(make(stills(2, 3), transition=Transition(duration=0.5)))
    zooms = named(graph, "zoompan")
    # The first still runs on under the 0.5 s crossfade: 2.5 s x 30 fps.
    assert "d=75" in zooms[0] and "z=1+((1.12-1)*on/74)" in zooms[0]
    assert "d=90" in zooms[1] and "s=854x480" in zooms[1]
    assert named(graph, "scale")[0] == "scale=1708:960:force_original_aspect_ratio=increase"


def test_zoom_out_reverses_the_move() -> None:
    graph = graph_of(make(stills(2, zoom_out=True, zoom=1.3)))
    assert "z=1.3-((1.3-1)*on/59)" in named(graph, "zoompan")[0]


def test_crossfades_start_at_each_incoming_clip() -> None:
    graph = graph_of(make(stills(2, 1.5, 2), transition=Transition(kind="dissolve", duration=0.5)))
    assert named(graph, "xfade") == [
        "xfade=duration=0.5:offset=2.0:transition=dissolve",
        "xfade=duration=0.5:offset=3.5:transition=dissolve",
    ]


def test_without_a_transition_segments_are_concatenated() -> None:
    graph = graph_of(make(stills(1, 1), transition=None))
    assert named(graph, "xfade") == []
    assert named(graph, "concat") == ["concat=a=0:n=2:v=1"]


def test_gaps_are_filled_with_background_colour() -> None:
    timeline = make(
        Track(kind="video", clips=[ImageClip(start=1, duration=1, source=Path("/in/a.png"))]),
        background="#102030",
        duration=3,
    )
    args = compile_timeline(timeline, OUT, font=FONT).args
    colours = [args[i + 1] for i, a in enumerate(args) if a == "-i" and "color=" in args[i + 1]]
    assert colours == ["color=c=#102030:s=854x480:r=30", "color=c=#102030:s=854x480:r=30"]
    assert named(graph_of(timeline), "trim") == ["trim=end_frame=45", "trim=end_frame=30"]


def test_video_clips_are_trimmed_resampled_and_held() -> None:
    clip = VideoClip(start=0, duration=2, source=Path("/in/c.mp4"), trim_start=1.5, fit="contain")
    timeline = make(Track(kind="video", clips=[clip]), output=OutputPreset(quality="480p", fps=25))
    args = compile_timeline(timeline, OUT, font=FONT).args
    assert args[args.index("/in/c.mp4") - 5 : args.index("/in/c.mp4")] == [
        "-ss", "1.5", "-t", "2.0", "-i",
    ]  # fmt: skip
    graph = graph_of(timeline)
    assert graph[0] == "fps=25"
    assert "pad=854:480:(ow-iw)/2:(oh-ih)/2:color=black" in graph
    assert "tpad=stop_duration=2.0:stop_mode=clone" in graph
    assert "trim=end_frame=50" in graph


def test_a_video_clip_covering_the_frame_is_cropped_to_its_shape_before_scaling() -> None:
    clip = VideoClip(start=0, duration=2, source=Path("/in/portrait.mp4"))
    graph = graph_of(make(Track(kind="video", clips=[clip])))
    # Only what shows is scaled: crop to 16:9 first (a portrait source keeps a band).
    assert graph[:3] == [
        "fps=30",
        "crop=min(iw\\,ih*854/480):min(ih\\,iw*480/854)",
        "scale=854:480",
    ]


def test_a_looping_clip_that_wraps_is_decoded_once_and_repeated_from_memory() -> None:
    def looped(seconds: float, output: OutputPreset = P480, trim: float = 0.0) -> Timeline:
        clip = VideoClip(
            start=0, duration=5, source=Path("/in/c.mp4"), loop=True, source_duration=seconds,
            trim_start=trim,
        )  # fmt: skip
        return make(Track(kind="video", clips=[clip]), output=output)

    short = looped(2.0, trim=0.5)
    args = compile_timeline(short, OUT, font=FONT).args
    # One pass read (no -stream_loop), fitted, kept and repeated: 60 frames a pass.
    assert args[args.index("/in/c.mp4") - 3 : args.index("/in/c.mp4")] == ["-t", "2.0", "-i"]
    graph = graph_of(short)
    assert graph[3:6] == [
        "loop=loop=-1:size=60:start=0",
        "trim=end_frame=165:start_frame=15",  # from trim_start, for the segment's 150 frames
        "setpts=N/30/TB",
    ]
    # A pass too large to keep at this frame size streams the file again on each pass.
    huge = looped(2.0, output=OutputPreset(quality="1080p", fps=60, custom_size=(3840, 2160)))
    assert named(graph_of(huge), "loop") == []
    args = compile_timeline(huge, OUT, font=FONT).args
    assert args[args.index("/in/c.mp4") - 7 : args.index("/in/c.mp4")] == [
        "-ss", "0.0", "-stream_loop", "-1", "-t", "5.0", "-i",
    ]  # fmt: skip
    # A clip as long as its section never wraps: read once, no copy kept.
    assert named(graph_of(looped(5.0)), "loop") == []


def test_frames_are_counted_on_the_output_grid() -> None:
    # 1/3 s is not a whole number of frames at 30 fps; boundaries round to the nearest frame.
    graph = graph_of(make(stills(1 / 3, 2 / 3, ken_burns=False), transition=None))
    assert named(graph, "loop") == ["loop=loop=9:size=1:start=0", "loop=loop=19:size=1:start=0"]


def test_captions_are_drawtext_switched_on_by_time() -> None:
    text = TextClip(start=1, duration=1.5, text="It's 50%: a, b; [c]")
    graph = graph_of(make(stills(3), Track(kind="text", clips=[text])))
    (draw,) = named(graph, "drawtext")
    assert r"enable=gte(t\,1.000)*lt(t\,2.500)" in draw
    assert "expansion=none" in draw
    assert "fontfile=/fonts/Sans.ttf" in draw
    # Escaped once for the option value and once for the filtergraph.
    assert r"text=It\\\'s 50%\\: a\, b\; \[c\]" in draw


def test_caption_filters_centre_each_line_above_the_bottom_margin() -> None:
    clip = TextClip(start=0, duration=1, text="word " * 40, size=0.05)
    filters = caption_filters(clip, 854, 480, FONT)
    assert len(filters) == 3
    assert [f["y"] for f in filters] == [346, 381, 416]
    assert all(f["x"] == "(w-text_w)/2" and f["fontsize"] == 24 for f in filters)
    assert filters[-1]["text"].endswith("…")
    top = caption_filters(clip.model_copy(update={"position": "top", "box": False}), 854, 480, FONT)
    assert top[0]["y"] == 29 and "box" not in top[0]


def test_voice_ducks_music_and_the_mix_is_loudness_normalised() -> None:
    voice = AudioClip(start=0.5, duration=1, source=Path("/in/v.wav"))
    music = AudioClip(
        start=0, duration=3, source=Path("/in/m.mp3"), role="music", loop=True, volume=0.3
    )
    timeline = make(
        stills(3), Track(kind="audio", clips=[voice]), Track(kind="audio", clips=[music])
    )
    args = compile_timeline(timeline, OUT, font=FONT).args
    assert args[args.index("/in/m.mp3") - 3 : args.index("/in/m.mp3")] == [
        "-stream_loop", "-1", "-i",
    ]  # fmt: skip
    graph = graph_of(timeline)
    assert named(graph, "asplit") == ["asplit=2"]
    assert named(graph, "sidechaincompress") == [
        "sidechaincompress=attack=20:ratio=8:release=400:threshold=0.02"
    ]
    assert named(graph, "volume") == ["volume=0.3"]
    assert named(graph, "amix") == ["amix=duration=longest:inputs=2:normalize=0"]
    assert named(graph, "loudnorm") == ["loudnorm=I=-16.0:LRA=11:TP=-1.5"]


def test_without_ducking_music_is_simply_mixed() -> None:
    voice = AudioClip(start=0, duration=1, source=Path("/in/v.wav"))
    music = AudioClip(start=0, duration=2, source=Path("/in/m.mp3"), role="music", fade_out=1)
    timeline = make(
        stills(2),
        Track(kind="audio", clips=[voice]),
        Track(kind="audio", clips=[music]),
        duck_music=False,
    )
    graph = graph_of(timeline)
    assert named(graph, "sidechaincompress") == []
    assert named(graph, "afade") == ["afade=d=1.0:st=1.0:t=out"]


def test_a_timeline_without_sound_gets_a_silent_track() -> None:
    args = compile_timeline(make(stills(2)), OUT, font=FONT).args
    assert "anullsrc=r=48000:cl=stereo" in args
    assert named(graph_of(make(stills(2))), "loudnorm") == []


def test_thumbnail_and_title_card_arguments() -> None:
    assert thumbnail_args(Path("v.mp4"), Path("t.jpg"), 1.5, width=320) == [
        *GLOBAL_ARGS,
        "-ss", "1.5", "-i", "v.mp4",
        "-filter_complex", "[0]scale=320:-2[s0]",
        "-map", "[s0]", "-q:v", "3", "-vframes", "1", "t.jpg",
    ]  # fmt: skip
    card = title_card_args("Hello: world", Path("c.png"), 854, 480, subtitle="sub", font=FONT)
    assert card[card.index("-f") + 1 : card.index("-f") + 4] == [
        "lavfi", "-i", "color=c=#1e293b:s=854x480:r=1",
    ]  # fmt: skip
    spec = card[card.index("-filter_complex") + 1]
    assert spec.count("drawtext") == 2 and r"text=Hello\\\\: world" not in spec
    assert r"text=Hello\\: world" in spec
    assert card[-3:] == ["-vframes", "1", "c.png"]


def test_captions_wrap_to_the_frame_width() -> None:
    assert wrap_caption("short", 854, 26) == ["short"]
    lines = wrap_caption("lorem ipsum " * 20, 480, 26, max_lines=2)
    assert len(lines) == 2 and all(len(line) <= 30 for line in lines)


def test_find_font_prefers_dejavu_and_falls_back(tmp_path: Path) -> None:
    assert find_font() == DEFAULT_FONT
    fallback = find_font(tmp_path / "missing.ttf")
    assert fallback.suffix == ".ttf" and fallback.is_file()
