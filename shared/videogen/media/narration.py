"""Text to speech: one engine interface, an offline espeak-ng engine and Google Cloud TTS.

Every engine writes a WAV file and reports its duration as ffprobe measures it, so the
section timings of a composed video come from the audio itself, never from a guess.
"""

from __future__ import annotations

import functools
import re
import subprocess
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from videogen.config import get_settings
from videogen.media.errors import NarrationError
from videogen.media.render import probe
from videogen.media.words import (
    EspeakUnavailable,
    Word,
    espeak_word_starts,
    marked_ssml,
    spoken_words,
    words_from_starts,
)
from videogen.usage import in_context, record_calls, record_tts

GOOGLE_MAX_BYTES = 5000  # the API's limit on input text or SSML per request
_SENTENCE_END = re.compile(r"(?<=[.!?…;])\s+")
_SPEAK = re.compile(r"^\s*<speak\b[^>]*>(.*)</speak>\s*$", re.DOTALL)


@dataclass(frozen=True)
class Speech:
    """A synthesized narration: the WAV file, its measured length in seconds and when each
    word is spoken (empty when the engine could not say)."""

    path: Path
    duration: float
    words: tuple[Word, ...] = ()


class NarrationEngine(Protocol):
    """Anything that turns text into a WAV file."""

    name: str

    def synthesize(
        self,
        text: str,
        out: Path,
        *,
        voice: str | None = None,
        language: str = "en",
        speaking_rate: float = 1.0,
    ) -> Speech:
        """Speak ``text`` into ``out`` (a .wav path)."""
        ...


def is_ssml(text: str) -> bool:
    """True when the text is an SSML document (``<speak>…</speak>``)."""
    return bool(_SPEAK.match(text))


def _fits(text: str, limit: int) -> bool:
    return len(text.encode("utf-8")) <= limit


def _hard_split(text: str, limit: int) -> list[str]:
    """Split an over-long sentence at spaces, or anywhere if a single word is too long."""
    parts: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if _fits(candidate, limit):
            current = candidate
            continue
        if current:
            parts.append(current)
        while not _fits(word, limit):
            cut = limit
            while not _fits(word[:cut], limit):
                cut -= 1
            parts.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        parts.append(current)
    return parts


def _ssml_sentences(body: str) -> list[str]:
    """Sentences of an SSML body, split only where no tag is open."""
    pieces: list[str] = []
    depth, start = 0, 0
    for match in re.finditer(r"<(/?)[^>]*?(/?)>|(?<=[.!?…;])\s+", body):
        token = match.group(0)
        if token.startswith("<"):
            if match.group(1):
                depth -= 1
            elif not match.group(2):
                depth += 1
        elif depth == 0:
            pieces.append(body[start : match.start()])
            start = match.end()
    pieces.append(body[start:])
    return [p for p in pieces if p.strip()]


def split_text(text: str, limit: int = GOOGLE_MAX_BYTES) -> list[str]:
    """Chunks of at most ``limit`` UTF-8 bytes, cut at sentence boundaries; SSML stays valid."""
    match = _SPEAK.match(text)
    if match:
        wrapper = len(b"<speak></speak>")
        sentences = _ssml_sentences(match.group(1).strip())
        budget = limit - wrapper
    else:
        sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
        budget = limit
    chunks: list[str] = []
    current = ""
    for sentence in sentences:
        candidate = f"{current} {sentence}" if current else sentence
        if _fits(candidate, budget):
            current = candidate
            continue
        if current:
            chunks.append(current)
        if _fits(sentence, budget):
            current = sentence
        else:
            # A tag-free run is the only thing that can be cut mid-sentence safely.
            *whole, current = _hard_split(sentence, budget)
            chunks.extend(whole)
    if current:
        chunks.append(current)
    return [f"<speak>{c}</speak>" for c in chunks] if match else chunks


def join_wavs(parts: Sequence[Path], out: Path) -> Path:
    """Concatenate WAV files of one format (as one engine produces them) into ``out``."""
    with wave.open(str(parts[0]), "rb") as first:
        params = first.getparams()
    with wave.open(str(out), "wb") as joined:
        joined.setparams(params)
        for part in parts:
            with wave.open(str(part), "rb") as src:
                if src.getparams()[:3] != params[:3]:
                    raise NarrationError(f"{part.name} has a different audio format")
                joined.writeframes(src.readframes(src.getnframes()))
    return out


def measure_speech(path: Path) -> Speech:
    """A recorded narration (a WAV or any audio ffprobe reads) as a :class:`Speech`."""
    return _measured(path)


def _measured(path: Path) -> Speech:
    """The speech at ``path`` with its length as ffprobe reports it."""
    duration = probe(path)["duration"]
    if duration <= 0:
        raise NarrationError(f"the narration {path.name} is empty")
    return Speech(path=path, duration=duration)


class EspeakEngine:
    """Offline speech with espeak-ng: robotic but instant and needs no account."""

    name = "espeak"
    base_wpm = 175  # espeak-ng's own default speed

    def __init__(self, binary: str = "espeak-ng") -> None:
        self.binary = binary

    def synthesize(
        self,
        text: str,
        out: Path,
        *,
        voice: str | None = None,
        language: str = "en",
        speaking_rate: float = 1.0,
    ) -> Speech:
        """Speak ``text`` (plain or SSML) into a WAV file."""
        wpm = max(80, min(450, round(self.base_wpm * speaking_rate)))
        cmd = [self.binary, "-v", (voice or language).lower(), "-s", str(wpm), "-w", str(out)]
        if is_ssml(text):
            cmd.append("-m")
        cmd.append("--stdin")
        try:
            done = subprocess.run(
                cmd, input=text, capture_output=True, text=True, timeout=120, check=False
            )
        except FileNotFoundError as exc:
            raise NarrationError(
                "espeak-ng is not installed", hint="apt-get install espeak-ng"
            ) from exc
        if "voice does not exist" in done.stderr:  # what the client asked for: a 422
            raise NarrationError(
                f"espeak-ng has no voice {(voice or language)!r}",
                status=422,
                code="UNKNOWN_VOICE",
                hint="The voices: GET /functions/v1/queue-job/voices?engine=espeak.",
            )
        if done.returncode != 0 or not out.is_file():
            raise NarrationError(f"espeak-ng failed: {done.stderr.strip()[-300:]}")
        speech = _measured(out)
        try:
            starts, _ = espeak_word_starts(text, (voice or language).lower(), wpm)
        except EspeakUnavailable:
            return speech  # captions then fall back to timing by characters
        words = words_from_starts(spoken_words(text), starts, speech.duration)
        return Speech(path=speech.path, duration=speech.duration, words=tuple(words))


@dataclass(frozen=True)
class EspeakVoice:
    """One voice the installed espeak-ng has: a language (``-v en-us``) or a variant of
    one (``-v en-us+Alicia``)."""

    code: str  # what ``-v`` takes, and a job's ``voice`` param
    language: str  # a BCP 47-style tag: en-US, fr-BE, cmn
    name: str
    gender: str | None
    variant: str | None = None


def _tag(code: str) -> str:
    """espeak's language name as a tag: a two-letter region upper-cased (en-us → en-US)."""
    parts = code.split("-")
    return "-".join(p.upper() if i and len(p) == 2 and p.isalpha() else p
                    for i, p in enumerate(parts))  # fmt: skip


def _gender(column: str) -> str | None:
    return {"M": "male", "F": "female"}.get(column.rsplit("/", 1)[-1])


def _voices_table(binary: str, which: str) -> list[list[str]]:
    try:
        done = subprocess.run(
            [binary, f"--voices={which}" if which else "--voices"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    # Columns: Pty Language Age/Gender VoiceName File [Other Languages].
    return [line.split() for line in done.stdout.splitlines()[1:] if len(line.split()) >= 5]


@functools.cache
def espeak_languages(binary: str = "espeak-ng") -> tuple[EspeakVoice, ...]:
    """Every language voice of the installed espeak-ng (``espeak-ng --voices``), read once."""
    voices: dict[str, EspeakVoice] = {}
    for row in _voices_table(binary, ""):
        code = row[1]
        voices.setdefault(code, EspeakVoice(code, _tag(code), row[3].replace("_", " "),
                                            _gender(row[2])))  # fmt: skip
    return tuple(sorted(voices.values(), key=lambda v: v.code))


@functools.cache
def espeak_variants(binary: str = "espeak-ng") -> tuple[tuple[str, str, str | None], ...]:
    """Every voice variant (``espeak-ng --voices=variant``): (file name, name, gender)."""
    found: dict[str, tuple[str, str, str | None]] = {}
    for row in _voices_table(binary, "variant"):
        file = row[4].rsplit("/", 1)[-1]
        found.setdefault(file, (file, row[3].replace("_", " "), _gender(row[2])))
    return tuple(sorted(found.values(), key=lambda v: v[0].lower()))


def espeak_voices(language: str | None = None, *, variants: bool = False) -> list[EspeakVoice]:
    """The languages (those whose tag is ``language`` or starts with ``language-``), and
    with ``variants`` each of them in every variant (``en-us+Alicia``)."""
    wanted = language.lower() if language else None
    langs = [
        v for v in espeak_languages()
        if wanted is None or v.language.lower() == wanted
        or v.language.lower().startswith(wanted + "-")
    ]  # fmt: skip
    if not variants:
        return langs
    return langs + [
        EspeakVoice(f"{v.code}+{file}", v.language, f"{v.name} ({name})", gender, variant=file)
        for v in langs
        for file, name, gender in espeak_variants()
    ]


class GoogleTTSEngine:
    """Google Cloud Text-to-Speech; text over 5000 bytes is sent in sentence-sized requests."""

    name = "google"

    def __init__(
        self,
        client: Any | None = None,
        *,
        credentials: Any | None = None,
        client_options: dict[str, Any] | None = None,
        transport: str | None = "rest",
        sample_rate: int = 24_000,
    ) -> None:
        self._client = client
        self._credentials = credentials
        self._client_options = client_options
        # REST keeps the import light (no grpc channel) and is what tests can record.
        self._transport = transport
        self.sample_rate = sample_rate

    def client(self) -> Any:
        """The TextToSpeechClient, created on first use so importing us stays cheap."""
        if self._client is None:
            # cold start: google loads on first use; v1beta1 is the version with timepoints
            from google.cloud import texttospeech_v1beta1 as texttospeech

            self._client = texttospeech.TextToSpeechClient(
                credentials=self._credentials,
                client_options=self._client_options,
                transport=self._transport,
            )
        return self._client

    def synthesize(
        self,
        text: str,
        out: Path,
        *,
        voice: str | None = None,
        language: str = "en-US",
        speaking_rate: float = 1.0,
    ) -> Speech:
        """Speak ``text`` (plain or SSML) into a LINEAR16 WAV file, with a ``<mark>`` before
        each word so the answer's ``timepoints`` say when each word starts."""
        # cold start: google loads on first use
        from google.api_core import exceptions as google_errors

        # cold start: google loads on first use (v1beta1: the version with timepoints)
        from google.cloud import texttospeech_v1beta1 as tts

        client = self.client()
        if voice and "-" not in language and voice.count("-") >= 2:
            # Google wants a region ("en-GB"); a voice name like "en-GB-Neural2-B" carries one.
            language = "-".join(voice.split("-")[:2])
        voice_params = tts.VoiceSelectionParams(language_code=language, name=voice or "")
        audio_config = tts.AudioConfig(
            audio_encoding=tts.AudioEncoding.LINEAR16,
            speaking_rate=max(0.25, min(4.0, speaking_rate)),
            sample_rate_hertz=self.sample_rate,
        )
        parts: list[Path] = []
        words: list[str] = []
        starts: list[float | None] = []
        offset = 0.0  # where the chunk being read starts in the joined audio
        try:
            for i, (ssml, chunk_words) in enumerate(_marked_chunks(text)):
                response = client.synthesize_speech(
                    request=tts.SynthesizeSpeechRequest(
                        input=tts.SynthesisInput(ssml=ssml),
                        voice=voice_params,
                        audio_config=audio_config,
                        enable_time_pointing=[tts.SynthesizeSpeechRequest.TimepointType.SSML_MARK],
                    )
                )
                record_calls()
                part = out.with_name(f"{out.stem}.part{i:03d}.wav")
                part.write_bytes(response.audio_content)
                parts.append(part)
                marks = {tp.mark_name: tp.time_seconds for tp in response.timepoints}
                words += chunk_words
                starts += [
                    offset + marks[f"w{k}"] if f"w{k}" in marks else None
                    for k in range(len(chunk_words))
                ]
                with wave.open(str(part), "rb") as audio:
                    offset += audio.getnframes() / audio.getframerate()
            if not parts:
                raise NarrationError("nothing to say: the text is empty")
            join_wavs(parts, out)
        except google_errors.GoogleAPIError as exc:
            raise NarrationError(f"Google TTS failed: {exc}") from exc
        except wave.Error as exc:
            raise NarrationError(f"Google TTS returned unreadable audio: {exc}") from exc
        finally:
            for part in parts:
                part.unlink(missing_ok=True)
        speech = _measured(out)
        timed = words_from_starts(words, starts, speech.duration)
        return Speech(path=speech.path, duration=speech.duration, words=tuple(timed))


def _marked_chunks(text: str) -> list[tuple[str, list[str]]]:
    """The text in requests whose marked-up SSML (:func:`marked_ssml`) fits Google's limit:
    a mark per word adds about 20 bytes a word, so the chunks shrink until they fit."""
    limit = GOOGLE_MAX_BYTES // 4
    while True:
        marked = [marked_ssml(chunk) for chunk in split_text(text, limit)]
        if limit <= 200 or all(_fits(ssml, GOOGLE_MAX_BYTES) for ssml, _ in marked):
            return marked
        limit = limit * 4 // 5


def get_narration_engine(name: str | None = None) -> NarrationEngine:
    """The engine named in settings (``TTS_ENGINE``) unless one is named here."""
    if name is None:
        name = get_settings().tts_engine
    if name == "espeak":
        return EspeakEngine()
    if name == "google":
        return GoogleTTSEngine()
    raise NarrationError(f"unknown TTS engine {name!r}", status=422, code="INVALID_ENGINE")


def narrate_sections(
    engine: NarrationEngine,
    texts: Sequence[str],
    workdir: Path,
    *,
    voice: str | None = None,
    language: str = "en",
    speaking_rate: float = 1.0,
) -> list[Speech]:
    """One WAV per section, synthesized concurrently, in section order."""
    workdir.mkdir(parents=True, exist_ok=True)

    def one(index: int) -> Speech:
        return engine.synthesize(
            texts[index],
            workdir / f"narration_{index:02d}.wav",
            voice=voice,
            language=language,
            speaking_rate=speaking_rate,
        )

    with ThreadPoolExecutor(max_workers=max(1, min(4, len(texts)))) as pool:
        speeches = list(pool.map(in_context(one), range(len(texts))))
    record_tts(engine.name, sum(len(t) for t in texts))
    return speeches
