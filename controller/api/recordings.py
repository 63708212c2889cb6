"""``/api/v1/recordings``: list and fetch recordings, pause/resume a live one (PCI).

Every route needs the bearer token (recordings are call data). Requests name a recording by its
call id, never by a path; the id is validated before it reaches the store, the path comes from the
store and is resolved inside the recordings root, and the audio is served only after its sha256
matches the stored one.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from controller.api.auth import json_error, require_token
from controller.api.keys import CONFIG, STORE
from controller.api.query import bad_request, listing_window
from controller.recording.files import IntegrityError, RecordingFileError, RecordingFiles
from controller.recording.policy import InvalidCallId, check_call_id
from controller.recording.recorder import AsteriskRefused, NotRecording, Recorder
from controller.recording.repository import COMPLETE, RecordingFilter, RecordingRepository

# the live recorder; set by the controller's wiring (absent: pause/resume answer 503)
RECORDER: web.AppKey[Recorder] = web.AppKey("recorder")


def _call_id(request: web.Request) -> str:
    try:
        return check_call_id(request.match_info["call_id"])
    except InvalidCallId as error:
        raise bad_request(str(error)) from None


@require_token
async def list_recordings(request: web.Request) -> web.Response:
    where = RecordingFilter(
        queue=request.query.get("queue"),
        campaign=request.query.get("campaign"),
        agent_id=request.query.get("agent"),
        **listing_window(request),
    )
    rows = await RecordingRepository(request.app[STORE]).list_complete(where)
    return web.json_response({"recordings": rows})


@require_token
async def get_recording(request: web.Request) -> web.Response:
    call_id = _call_id(request)
    row = await RecordingRepository(request.app[STORE]).get(call_id)
    if row is None:
        return json_error(404, f"no recording for call {call_id}")
    return web.json_response(row)


@require_token
async def get_audio(request: web.Request) -> web.StreamResponse:
    call_id = _call_id(request)
    row = await RecordingRepository(request.app[STORE]).get(call_id)
    if row is None:
        return json_error(404, f"no recording for call {call_id}")
    if row["status"] != COMPLETE:
        return json_error(409, f"recording of call {call_id} is {row['status']}, not available")
    files = RecordingFiles(request.app[CONFIG].recording.root)
    try:
        path = await asyncio.to_thread(files.verified, row["path"], row["sha256"])
    except IntegrityError as error:
        return json_error(500, str(error))
    except RecordingFileError as error:
        return json_error(404, str(error))
    return web.FileResponse(
        path, headers={"Content-Type": "audio/wav", "X-Content-SHA256": row["sha256"]}
    )


async def _live(request: web.Request, pause: bool) -> web.Response:
    call_id = _call_id(request)
    recorder = request.app.get(RECORDER)
    if recorder is None:
        return json_error(503, "the recorder is not running")
    try:
        changed = await (recorder.pause(call_id) if pause else recorder.resume(call_id))
    except NotRecording as error:
        return json_error(404, str(error))
    except AsteriskRefused as error:
        return json_error(502, str(error))
    state = "paused" if pause else "recording"
    return web.json_response({"call_id": call_id, "state": state, "changed": changed})


@require_token
async def pause_recording(request: web.Request) -> web.Response:
    return await _live(request, pause=True)


@require_token
async def resume_recording(request: web.Request) -> web.Response:
    return await _live(request, pause=False)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/recordings", list_recordings)
    app.router.add_get("/api/v1/recordings/{call_id}", get_recording)
    app.router.add_get("/api/v1/recordings/{call_id}/audio", get_audio)
    app.router.add_post("/api/v1/recordings/{call_id}/pause", pause_recording)
    app.router.add_post("/api/v1/recordings/{call_id}/resume", resume_recording)
