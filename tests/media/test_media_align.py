"""Forced alignment of an uploaded narration: another voice, faster, pitched up, through a
telephone band with noise, reading the same text, is timed word by word and compared with
its own (known) word timings."""

from __future__ import annotations

import subprocess
from pathlib import Path

from videogen.media.align import align
from videogen.media.narration import EspeakEngine

TEXT = (
    "The moon pulls the sea toward it. Twice a day the water rises along the shore, "
    "and twice a day it falls back again."
)


def test_a_recording_in_another_voice_and_speed_aligns_to_its_words(tmp_path: Path) -> None:
    voice = EspeakEngine().synthesize(
        TEXT, tmp_path / "voice.wav", voice="en-us+f3", speaking_rate=1.3
    )
    upload = tmp_path / "upload.wav"
    # Pitched up 10 % by resampling (so 10 % faster too), band-limited, echoed, noisy.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(voice.path), "-f", "lavfi", "-i",
         "anoisesrc=c=pink:a=0.02:d=30", "-filter_complex",
         "[0]asetrate=22050*1.1,aresample=22050,highpass=300,lowpass=3400,"
         "aecho=0.8:0.5:60:0.3[v];[v][1]amix=inputs=2:duration=first:normalize=0",
         str(upload)], check=True,
    )  # fmt: skip
    truth = [(w.text, w.start / 1.1) for w in voice.words]
    words = align(upload, TEXT)
    assert [w.text for w in words] == [t for t, _ in truth]
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    errors = [abs(w.start - t) for w, (_, t) in zip(words, truth, strict=True)]
    mean = sum(errors) / len(errors)
    # Timing by characters alone, what captions did before, for comparison.
    length, total, acc, naive = voice.duration / 1.1, sum(len(t) + 1 for t, _ in truth), 0, []
    for text, start in truth:
        naive.append(abs(length * acc / total - start))
        acc += len(text) + 1
    print(f"alignment: mean {mean:.3f}s, worst {max(errors):.3f}s; by characters "
          f"{sum(naive) / len(naive):.3f}s")  # fmt: skip
    assert mean < 0.08
    assert max(errors) < 0.4
    assert mean < sum(naive) / len(naive) / 3
