"""Composed video: topic → script → narration → pictures → one ffmpeg render.

Modules, in pipeline order: ``script`` (what is said), ``narration`` (speech),
``images`` (uploads and title cards), ``timeline`` (the render spec), ``graph`` (pure
spec → ffmpeg args), ``render`` (runs ffmpeg/ffprobe), ``compose`` (the whole pipeline:
``plan``, ``compose``, ``estimate``). Import the module you need; nothing heavy loads here.
"""
