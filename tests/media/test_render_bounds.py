"""No render holds more than it paid for: every ffmpeg run is bounded, large stills are
shrunk once, and an in-request render that outgrows its estimate goes on as a job."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
from serverkit import running_server
from videogen_dev.users import ensure_user

from videogen.kit.auth import issue_access_token
from videogen.media import render
from videogen.media.errors import RenderError
from videogen.media.images import fit_for_render, validate_upload
from videogen.media.render import probe, run_ffmpeg


def _still(path: Path, width: int, height: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=teal:s={width}x{height}",
         "-frames:v", "1", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


def test_a_large_still_is_shrunk_once_to_just_cover_the_working_frame(tmp_path: Path) -> None:
    big = validate_upload(_still(tmp_path / "big.png", 8192, 4096))
    fitted = fit_for_render(big, (1708, 960), tmp_path)
    info = probe(fitted)
    # The smallest size that still covers 1708x960 at the still's own 2:1 aspect.
    assert (info["width"], info["height"]) == (1920, 960)
    small = validate_upload(_still(tmp_path / "small.png", 1920, 1080))
    assert fit_for_render(small, (1708, 960), tmp_path) == small.path  # left as it is


def test_an_ffmpeg_run_past_its_cpu_bound_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten minutes of 1080p to encode on a budget of 1 CPU-second: the kernel stops it."""
    monkeypatch.setattr(render, "CPU_S_BASE", 1.0)
    monkeypatch.setattr(render, "CPU_S_PER_OUTPUT_S", 0.0)
    out = tmp_path / "long.mp4"
    args = ["-y", "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30", "-t", "600",
            "-c:v", "libx264", "-preset", "slow", str(out)]  # fmt: skip
    with pytest.raises(RenderError) as stopped:
        run_ffmpeg(args, duration=600.0, output=out)
    assert "over its time or CPU bound" in stopped.value.message
    assert not out.exists()  # a stopped render leaves no partial file


def test_every_ffmpeg_run_has_its_address_space_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limits are set on the process the runner started (checked through prlimit)."""
    seen: list[tuple[int, int]] = []
    real_bound = render._bound

    def spy(proc: subprocess.Popen[str], cpu_seconds: float | None) -> None:
        real_bound(proc, cpu_seconds)
        seen.append(resource.prlimit(proc.pid, resource.RLIMIT_AS))
        seen.append(resource.prlimit(proc.pid, resource.RLIMIT_CPU))

    monkeypatch.setattr(render, "_bound", spy)
    run_ffmpeg(["-v", "error", "-f", "lavfi", "-i", "anullsrc", "-t", "0.1", "-f", "null", "-"],
               duration=0.1)  # fmt: skip
    memory, cpu = seen
    assert memory == (render.MAX_MEMORY_BYTES, render.MAX_MEMORY_BYTES)
    assert cpu[0] == round(render.CPU_S_BASE + render.CPU_S_PER_OUTPUT_S * 0.1 + 0.5)


def test_an_in_request_render_past_its_deadline_goes_on_as_a_job(
    db_url: str, tmp_path: Path
) -> None:
    """A deadline no render can meet: the POST answers 202 with the job queued again, its
    credits still held for the worker that will finish it; nothing is lost."""
    with running_server(db_url, tmp_path, SYNC_RENDER_DEADLINE_SECONDS="0.001") as server:
        user_id, _ = ensure_user(db_url, "deadline@example.com")
        headers = {"Authorization": f"Bearer {issue_access_token(user_id)}"}
        claim = {"action": "claim_initial_grant"}
        assert httpx.post(server.url("update-credits"), json=claim, headers=headers).is_success
        body = {"model": "reference/compose", "prompt": "Tides", "sections": 1,
                "resolution": "480p", "duration": 10}  # fmt: skip
        resp = httpx.post(server.url("generate-video"), json=body, headers=headers, timeout=120)
        assert resp.status_code == 202, resp.text
        job = resp.json()["data"]
        assert job["status"] == "queued"
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select status, failures, cost, (select reserved from profiles where id = user_id)"
            " from jobs where id = %s",
            [job["id"]],
        ).fetchone()
        error = conn.execute("select error_code from jobs where id = %s", [job["id"]]).fetchone()
        audit = conn.execute("select service.money_audit_report(86400)").fetchone()
    assert row is not None
    status, failures, cost, reserved = row
    assert (status, failures, reserved) == ("queued", 1, cost)
    assert error == ("RENDER_DEADLINE",)
    assert audit == ([],)


def test_the_upload_checks_decode_under_the_same_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short command through run_bounded gets the runner's memory and CPU limits too."""
    seen: list[tuple[int, int]] = []
    real_bound = render._bound

    def spy(proc: subprocess.Popen[str], cpu_seconds: float | None) -> None:
        real_bound(proc, cpu_seconds)
        seen.append(resource.prlimit(proc.pid, resource.RLIMIT_AS))

    monkeypatch.setattr(render, "_bound", spy)
    done = render.run_bounded(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc",
                               "-t", "0.1", "-f", "null", "-"], timeout=60)  # fmt: skip
    assert done.returncode == 0
    assert seen == [(render.MAX_MEMORY_BYTES, render.MAX_MEMORY_BYTES)]
