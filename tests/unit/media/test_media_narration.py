"""Narration: text splitting, WAV joining and Google TTS against recorded REST responses.

The real ``TextToSpeechClient`` runs over its REST transport with anonymous credentials;
its requests session gets a transport adapter that answers like the API does, so the
client's own request building and response parsing are exercised without a network.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import texttospeech_v1beta1 as texttospeech

from videogen.media.errors import NarrationError
from videogen.media.narration import (
    GOOGLE_MAX_BYTES,
    GoogleTTSEngine,
    get_narration_engine,
    is_ssml,
    join_wavs,
    split_text,
)

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet riverbank. "


def test_short_text_is_one_chunk() -> None:
    assert split_text("Hello there. How are you?") == ["Hello there. How are you?"]


def test_long_text_splits_at_sentence_boundaries_under_the_byte_limit() -> None:
    text = SENTENCE * 150  # ~10 kB
    chunks = split_text(text)
    assert len(chunks) == 3
    assert all(len(c.encode()) <= GOOGLE_MAX_BYTES for c in chunks)
    assert all(c.endswith("riverbank.") for c in chunks)
    assert " ".join(chunks) == text.strip()


def test_the_limit_counts_bytes_not_characters() -> None:
    text = "Über straße größe. " * 10  # multi-byte letters
    chunks = split_text(text, limit=100)
    assert all(len(c.encode()) <= 100 for c in chunks)
    assert len(chunks) > len(text) // 100  # would be fewer if characters were counted


def test_a_sentence_longer_than_the_limit_splits_at_words_then_anywhere() -> None:
    chunks = split_text("word " * 50 + "x" * 120, limit=60)
    assert all(len(c.encode()) <= 60 for c in chunks)
    assert "".join(chunks).replace(" ", "") == ("word" * 50 + "x" * 120)


def test_ssml_is_split_outside_tags_and_rewrapped() -> None:
    body = '<s>One <emphasis level="strong">big. idea</emphasis>.</s> <break time="1s"/>Two. '
    ssml = f"<speak>{body * 3}</speak>"
    chunks = split_text(ssml, limit=120)
    assert len(chunks) > 1
    for chunk in chunks:
        assert is_ssml(chunk) and len(chunk.encode()) <= 120
        assert chunk.count("<emphasis") == chunk.count("</emphasis>")
        assert chunk.count("<s>") == chunk.count("</s>")


def make_wav(path: Path, seconds: float, rate: int = 24_000) -> Path:
    """A real LINEAR16 mono WAV, as Google returns for LINEAR16."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=300:d={seconds}",
         "-ar", str(rate), "-ac", "1", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_join_wavs_concatenates_audio(tmp_path: Path) -> None:
    a = make_wav(tmp_path / "a.wav", 0.3)
    b = make_wav(tmp_path / "b.wav", 0.2)
    out = join_wavs([a, b], tmp_path / "ab.wav")
    import wave

    with wave.open(str(out)) as w:
        assert w.getnframes() == round(0.5 * 24_000)
    make_wav(tmp_path / "c.wav", 0.1, rate=16_000)
    with pytest.raises(NarrationError, match="different audio format"):
        join_wavs([a, tmp_path / "c.wav"], tmp_path / "bad.wav")


# Google Cloud TTS, recorded ------------------------------------------------------------------


class RecordedTTS(requests.adapters.BaseAdapter):
    """Answers ``text:synthesize`` with a recorded body; keeps each request's JSON."""

    def __init__(self, body: dict[str, Any], status: int = 200) -> None:
        super().__init__()
        self.body = body
        self.status = status
        self.calls: list[dict[str, Any]] = []

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        body = cast(bytes | str, request.body or "{}")
        self.calls.append({"method": request.method, "url": request.url, "json": json.loads(body)})
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json; charset=UTF-8"
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture(scope="module")
def recorded_body(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The body Google returns for a 0.4 s LINEAR16 synthesis."""
    wav = make_wav(tmp_path_factory.mktemp("tts") / "reply.wav", 0.4)
    return {"audioContent": base64.b64encode(wav.read_bytes()).decode()}


def google_engine(adapter: RecordedTTS) -> GoogleTTSEngine:
    client = texttospeech.TextToSpeechClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": "texttospeech.googleapis.com"},
    )
    # The REST transport is a requests session: mounting an adapter is requests' own hook.
    cast(Any, client.transport)._session.mount("https://", adapter)
    return GoogleTTSEngine(client)


def test_google_tts_sends_voice_language_rate_and_writes_the_audio(
    tmp_path: Path, recorded_body: dict[str, Any]
) -> None:
    adapter = RecordedTTS(recorded_body)
    speech = google_engine(adapter).synthesize(
        "Hello from the cloud.",
        tmp_path / "hello.wav",
        voice="en-GB-Neural2-B",
        language="en-GB",
        speaking_rate=1.25,
    )
    assert speech.path == tmp_path / "hello.wav"
    assert speech.duration == pytest.approx(0.4, abs=0.01)
    (call,) = adapter.calls
    assert call["method"] == "POST"
    assert call["url"] == "https://texttospeech.googleapis.com/v1beta1/text:synthesize"
    assert call["json"] == {
        # A mark before each word: the answer's timepoints time the words.
        "input": {
            "ssml": '<speak><mark name="w0"/>Hello <mark name="w1"/>from <mark name="w2"/>the '
            '<mark name="w3"/>cloud.</speak>'
        },
        "enableTimePointing": ["SSML_MARK"],
        "voice": {"languageCode": "en-GB", "name": "en-GB-Neural2-B"},
        "audioConfig": {
            "audioEncoding": "LINEAR16",
            "speakingRate": 1.25,
            "sampleRateHertz": 24000,
        },
    }
    assert list(tmp_path.iterdir()) == [tmp_path / "hello.wav"]  # parts cleaned up


def test_google_tts_takes_the_region_from_the_voice_name(
    tmp_path: Path, recorded_body: dict[str, Any]
) -> None:
    adapter = RecordedTTS(recorded_body)
    google_engine(adapter).synthesize(
        "Hi.", tmp_path / "v.wav", voice="en-AU-Neural2-A", language="en"
    )
    assert adapter.calls[0]["json"]["voice"] == {"languageCode": "en-AU", "name": "en-AU-Neural2-A"}


def test_google_tts_splits_long_text_and_joins_the_audio(
    tmp_path: Path, recorded_body: dict[str, Any]
) -> None:
    adapter = RecordedTTS(recorded_body)
    speech = google_engine(adapter).synthesize(SENTENCE * 150, tmp_path / "long.wav")
    calls = len(adapter.calls)
    assert 3 <= calls <= 12  # marked up, each request still fits Google's 5000 bytes
    assert all(len(c["json"]["input"]["ssml"].encode()) <= 5000 for c in adapter.calls)
    assert speech.duration == pytest.approx(0.4 * calls, abs=0.01)


def test_google_tts_sends_ssml_as_ssml(tmp_path: Path, recorded_body: dict[str, Any]) -> None:
    adapter = RecordedTTS(recorded_body)
    ssml = '<speak>Hello <break time="300ms"/> world.</speak>'
    google_engine(adapter).synthesize(ssml, tmp_path / "s.wav", language="en-US")
    assert adapter.calls[0]["json"]["input"] == {
        "ssml": '<speak><mark name="w0"/>Hello <break time="300ms"/> <mark name="w1"/>world.'
        "</speak>"
    }


def test_google_tts_times_each_word_from_the_timepoints(
    tmp_path: Path, recorded_body: dict[str, Any]
) -> None:
    """The recorded answer of v1beta1 ``text:synthesize`` with ``enableTimePointing``:
    ``timepoints[{markName, timeSeconds}]``; a mark Google left out is interpolated."""
    body = {
        **recorded_body,
        "timepoints": [
            {"markName": "w0", "timeSeconds": 0.05},
            {"markName": "w1", "timeSeconds": 0.12},
            {"markName": "w3", "timeSeconds": 0.3},
        ],
        "audioConfig": {"audioEncoding": "LINEAR16", "sampleRateHertz": 24000},
    }
    speech = google_engine(RecordedTTS(body)).synthesize("Tides & the moon", tmp_path / "t.wav")
    assert [(w.text, w.start) for w in speech.words] == [
        ("Tides", 0.05), ("&", 0.12), ("the", 0.21), ("moon", 0.3)
    ]  # fmt: skip
    assert speech.words[-1].end == pytest.approx(speech.duration, abs=0.001)
    long = google_engine(RecordedTTS(body)).synthesize(SENTENCE * 40, tmp_path / "l.wav")
    # Each request's times are offset by the audio before it (0.4 s a request).
    starts = {w.start for w in long.words}
    assert {0.05, 0.45, 0.85} <= starts and max(starts) < long.duration


def test_google_tts_errors_become_narration_errors(tmp_path: Path) -> None:
    denied = {"error": {"code": 403, "message": "API not enabled", "status": "PERMISSION_DENIED"}}
    with pytest.raises(NarrationError, match="API not enabled") as caught:
        google_engine(RecordedTTS(denied, status=403)).synthesize("Hi.", tmp_path / "x.wav")
    assert caught.value.code == "NARRATION_FAILED"
    garbage = {"audioContent": base64.b64encode(b"not a wav").decode()}
    with pytest.raises(NarrationError, match="unreadable audio"):
        google_engine(RecordedTTS(garbage)).synthesize("Hi.", tmp_path / "y.wav")


def test_get_narration_engine_by_name() -> None:
    assert get_narration_engine("espeak").name == "espeak"
    assert get_narration_engine("google").name == "google"
    with pytest.raises(NarrationError, match="unknown TTS engine"):
        get_narration_engine("robot")
