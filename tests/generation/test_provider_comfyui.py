"""The ComfyUI provider against a fake ComfyUI server on a real localhost socket.

The shipped templates are filled and queued, references are uploaded and
named in LoadImage, the job is followed to its image; refusals name the node
and the problem, failures end in the right class, and a cancel stops the job
on the server.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from PIL import Image

from generation import catalog
from generation.providers import (
    PermanentError,
    RenderRequest,
    TransientError,
    provider_for,
)
from generation.providers.base import CanceledError
from generation.providers.comfyui import ComfyUIProvider
from generation.providers.comfyui_servers import server_for
from tests.fakes.comfyui_server import FakeComfyUI

WORKFLOWS = Path(__file__).resolve().parents[2] / "generation/providers/comfyui_workflows"
SHIPPED = {"flash": WORKFLOWS / "draft.json", "pro": WORKFLOWS / "quality.json"}


@pytest.fixture(autouse=True)
def no_slots_left_over(settings):
    """Slots and down marks live in Redis; a test starts with none."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter("comfyui:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def comfy():
    """A fresh server per test: what this process learned about one (its version, a
    websocket that failed a moment ago) must not carry over to the next test."""
    with FakeComfyUI() as server:
        yield server


def make_provider(url_or_servers, **kw) -> ComfyUIProvider:
    kw.setdefault("workflows", SHIPPED)
    kw.setdefault("poll_seconds", 0.02)
    kw.setdefault("timeout", 2.0)
    if isinstance(url_or_servers, dict):
        return ComfyUIProvider(servers=url_or_servers, **kw)
    return ComfyUIProvider(url=url_or_servers, **kw)


@pytest.fixture
def provider(comfy):
    return make_provider(comfy.url)


def request(prompt="a red fox in snow", *, tier="flash", size="1K", aspect="16:9", refs=(), **kw):
    model = "sd_xl_turbo_1.0_fp16.safetensors" if tier == "flash" else "sd_xl_base_1.0.safetensors"
    return RenderRequest(prompt, 1234, tier, size, aspect, model, refs, **kw)


def encoded(image_format: str, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format=image_format)
    return buffer.getvalue()


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.01)


def assert_stopped(comfy) -> None:
    """The prompt was taken off the queue and interrupted: it ends, or never starts."""
    (interrupt,) = comfy.interrupts
    assert comfy.deletes == [interrupt["prompt_id"]]
    wait_for(lambda: comfy.running is None and not comfy.pending)
    assert comfy.executed == []


def write_workflow(tmp_path: Path, workflow: dict) -> Path:
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(workflow))
    return path


# --- success -----------------------------------------------------------------------------


def test_draft_workflow_is_filled_queued_followed_and_fetched(provider, comfy):
    result = provider.render(request(size="2K", aspect="16:9"))

    width, height = catalog.pixel_size("2K", "16:9")
    assert Image.open(io.BytesIO(result.image)).size == (width, height)
    assert result.mime_type == "image/png"
    assert result.model == "sd_xl_turbo_1.0_fp16.safetensors"
    assert result.usage["workflow"] == "draft.json"

    (submitted,) = comfy.submitted
    # The client id the process's websocket listens with, so the events reach it.
    assert submitted["client_id"] == server_for(comfy.url).client_id
    nodes = submitted["prompt"]
    assert nodes["1"]["inputs"]["ckpt_name"] == "sd_xl_turbo_1.0_fp16.safetensors"
    assert nodes["2"]["inputs"]["text"] == "a red fox in snow"
    assert nodes["3"]["inputs"]["text"] == ""  # the negative prompt is left empty
    assert nodes["4"]["inputs"] == {"width": width, "height": height, "batch_size": 1}
    assert nodes["5"]["inputs"]["seed"] == 1234
    assert nodes["5"]["inputs"]["model"] == ["1", 0]  # links are left alone
    assert nodes["7"] == {  # a preview: the image goes to ComfyUI's temp folder
        "class_type": "PreviewImage",
        "inputs": {"images": ["6", 0]},
        "_meta": {"title": "Result"},
    }
    prompt_id = result.usage["prompt_id"]
    # The end is learned from the websocket: no history polls, then the
    # image, then the history entry is dropped.
    assert f"GET /history/{prompt_id}" not in comfy.paths
    assert comfy.paths[-2:] == ["GET /view", "POST /history"]
    assert comfy.history_deletes == [prompt_id]
    assert [kind for kind, _ in comfy.files] == ["temp"]


def test_quality_workflow_with_a_reference_uploads_it_and_runs_the_reference_branch(
    provider, comfy
):
    reference = encoded("JPEG")
    result = provider.render(
        request("hero shot", tier="pro", size="4K", aspect="3:2", refs=(reference,))
    )

    ((name, upload),) = comfy.uploads.items()
    assert upload.content_type == "image/jpeg"
    assert upload.data == reference
    assert upload.filename.startswith("contact-sheet-") and upload.filename.endswith(".jpg")
    assert name == f"{upload.filename} [temp]"  # into ComfyUI's temp folder, not input

    nodes = comfy.submitted[0]["prompt"]
    assert nodes["20"]["inputs"]["image"] == f"{upload.filename} [temp]"
    assert set(nodes) == {"1", "2", "3", "20", "21", "22", "23", "24", "25", "26"}
    fitted = (nodes["21"]["inputs"]["width"], nodes["21"]["inputs"]["height"])
    assert fitted == catalog.pixel_size("1K", "3:2")
    final = Image.open(io.BytesIO(result.image)).size
    assert final == catalog.pixel_size("4K", "3:2")
    assert result.text == ""


def test_quality_workflow_without_references_runs_the_plain_branch(provider, comfy):
    provider.render(request(tier="pro", size="2K", aspect="1:1"))
    nodes = comfy.submitted[0]["prompt"]
    assert set(nodes) == {"1", "2", "3", "10", "11", "12", "13", "14"}
    assert comfy.uploads == {}
    assert (nodes["10"]["inputs"]["width"], nodes["10"]["inputs"]["height"]) == (1024, 1024)
    assert (nodes["13"]["inputs"]["width"], nodes["13"]["inputs"]["height"]) == (2048, 2048)


def test_references_beyond_the_workflow_slots_are_noted_not_sent(provider, comfy):
    result = provider.render(request(refs=(encoded("PNG"),)))
    assert comfy.uploads == {}
    assert result.text == (
        "1 reference image(s) were not used: the workflow draft.json has 0 reference slot(s)."
    )


def test_placeholders_inside_text_are_replaced_as_text(comfy, tmp_path):
    workflow = json.loads((WORKFLOWS / "draft.json").read_text())
    workflow["2"]["inputs"]["text"] = "{{prompt}}, seed {{seed}}, {{width}}x{{height}}"
    workflow["7"]["inputs"]["filename_prefix"] = "cs/{{ seed }}"
    path = write_workflow(tmp_path, workflow)
    provider = make_provider(comfy.url, workflows={"flash": path}, keep_outputs=True)
    provider.render(request("fox", size="512", aspect="1:1"))
    nodes = comfy.submitted[0]["prompt"]
    assert nodes["2"]["inputs"]["text"] == "fox, seed 1234, 512x512"
    assert nodes["7"]["inputs"]["filename_prefix"] == "cs/1234"


def test_provider_for_builds_it_from_settings(comfy, settings):
    settings.FLASH_PROVIDER = "comfyui"
    settings.COMFYUI_FLASH_URLS = [comfy.url]
    settings.COMFYUI_POLL_SECONDS = 0.02
    provider = provider_for("flash")
    assert provider.servers["flash"] == [comfy.url]
    assert (provider.name, provider.label) == ("comfyui", "ComfyUI (studio GPUs)")
    assert provider.workflows["flash"] == SHIPPED["flash"]
    assert provider.render(request()).image.startswith(b"\x89PNG")


# --- refusals and failures ------------------------------------------------------------------


def test_node_errors_name_the_node_and_the_problem(provider, comfy):
    with pytest.raises(PermanentError) as caught:
        provider.render(request("[fault:node_errors] fox"))
    assert caught.value.message == (
        "ComfyUI refused the workflow draft.json: node 1 (CheckpointLoaderSimple): "
        "Value not in list: ckpt_name: 'sd_xl_turbo_1.0_fp16.safetensors' not in "
        "['v1-5-pruned-emaonly.safetensors']"
    )
    assert "prompt_outputs_failed_validation" in caught.value.detail
    assert comfy.executed == []


def test_execution_error_is_permanent_with_comfyuis_message(provider):
    with pytest.raises(PermanentError) as caught:
        provider.render(request("[fault:execution_error] fox"))
    assert not isinstance(caught.value, TransientError)
    # One sentence for the gallery; the rest of ComfyUI's message, with its
    # folder paths and traceback, stays in the detail for the log.
    assert caught.value.message == (
        "ComfyUI could not run the workflow draft.json: node 5 (KSampler) failed: "
        "Allocation on device 0 would exceed allowed memory. (out of memory)"
    )
    assert "torch.OutOfMemoryError" in caught.value.detail
    assert "Currently allocated" in caught.value.detail
    assert "/opt/ComfyUI/comfy/samplers.py" in caught.value.detail


def test_an_interrupt_by_someone_at_the_server_is_retried(provider):
    with pytest.raises(TransientError, match="interrupted on the ComfyUI server"):
        provider.render(request("[fault:interrupted_elsewhere] fox"))


def test_a_job_that_ends_without_an_image_is_permanent(provider):
    with pytest.raises(PermanentError, match="without an image"):
        provider.render(request("[fault:no_output] fox"))


def test_a_server_error_on_queueing_is_transient(provider):
    with pytest.raises(TransientError, match="had an error when asked to queue the workflow"):
        provider.render(request("[fault:500] fox"))


def test_an_unreachable_server_is_waited_for_then_fails_with_one_final_message():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    provider = make_provider(url, timeout=1.0, outage_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(PermanentError) as caught:
        provider.render(request())
    assert time.monotonic() - started >= 1.0  # waited by time, not by a count of attempts
    assert caught.value.message == (
        f"The studio's ComfyUI server at {url} did not answer for 1 second, so the image "
        "was not rendered. Nothing was charged."
    )


def test_a_job_past_the_deadline_is_stopped_and_retried(comfy):
    provider = make_provider(comfy.url, deadline=0.3)
    with pytest.raises(TransientError, match="did not finish the image within") as caught:
        provider.render(request("[fault:slow] fox"))
    assert "retried" not in caught.value.message  # the lane says what happens next
    assert_stopped(comfy)


def test_the_lanes_deadline_for_the_render_bounds_every_wait(comfy):
    provider = make_provider(comfy.url)
    started = time.monotonic()
    with pytest.raises(TransientError, match="did not finish the image within"):
        provider.render(request("[fault:slow] fox", deadline=started + 0.5))
    assert time.monotonic() - started < 3  # not the provider's own six minutes
    assert_stopped(comfy)  # and the GPU was freed


def test_an_outage_longer_than_the_renders_deadline_leaves_the_retry_to_the_lane():
    provider = make_provider("http://127.0.0.1:9", outage_seconds=300)
    started = time.monotonic()
    with pytest.raises(TransientError, match="has not answered for"):
        provider.render(request(deadline=started + 0.5))
    assert time.monotonic() - started < 3  # not the five minutes of the outage budget


def test_a_missing_workflow_file_names_the_setting(comfy, tmp_path):
    provider = ComfyUIProvider(url=comfy.url, workflows={"flash": tmp_path / "gone.json"})
    with pytest.raises(PermanentError, match="COMFYUI_FLASH_WORKFLOW"):
        provider.render(request())
    assert comfy.submitted == []


def test_a_ui_format_workflow_is_refused_in_words(comfy, tmp_path):
    path = write_workflow(tmp_path, {"nodes": [], "links": [], "version": 0.4})
    provider = ComfyUIProvider(url=comfy.url, workflows={"flash": path})
    with pytest.raises(PermanentError, match="not in API format"):
        provider.render(request())


def test_an_unknown_placeholder_is_named(comfy, tmp_path):
    workflow = json.loads((WORKFLOWS / "draft.json").read_text())
    workflow["5"]["inputs"]["steps"] = "{{steps}}"
    provider = ComfyUIProvider(
        url=comfy.url, workflows={"flash": write_workflow(tmp_path, workflow)}
    )
    with pytest.raises(PermanentError, match=r"unknown placeholder \{\{steps\}\}"):
        provider.render(request())
    assert comfy.submitted == []


def test_a_workflow_that_needs_more_references_than_given_says_so(comfy, tmp_path):
    workflow = json.loads((WORKFLOWS / "quality.json").read_text())
    for node_id in ("10", "11", "12", "13", "14"):  # keep only the reference branch
        del workflow[node_id]
    path = write_workflow(tmp_path, workflow)
    provider = ComfyUIProvider(url=comfy.url, workflows={"pro": path})
    with pytest.raises(PermanentError) as caught:
        provider.render(request(tier="pro"))
    assert caught.value.message == (
        "The ComfyUI workflow custom.json needs 1 reference image(s); this request has 0."
    )


def test_a_reference_that_is_not_an_image_is_refused(provider, comfy):
    with pytest.raises(PermanentError, match="not a PNG, JPEG or WebP"):
        provider.render(request(tier="pro", refs=(b"%PDF-1.7",)))
    assert comfy.submitted == []


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_interrupts_the_job_and_raises_canceled(provider, comfy):
    asked = []

    def cancel_check() -> bool:
        asked.append(True)
        return len(asked) >= 3  # a few polls in, the person cancels

    with pytest.raises(CanceledError, match="canceled") as caught:
        provider.render(request("[fault:slow] fox", cancel_check=cancel_check))
    assert not isinstance(caught.value, (TransientError, PermanentError))
    assert_stopped(comfy)
    assert "GET /view" not in comfy.paths


def test_cancel_check_is_not_part_of_request_equality():
    assert request(cancel_check=lambda: True) == request()


# --- through the lane ---------------------------------------------------------------------------


def test_drafts_through_the_lane_store_the_workflows_image(owner, team, db, comfy, settings):
    from generation.models import Status
    from tests.reliability.conftest import fund, submit
    from tests.reliability.test_provider_faults import drain

    settings.FLASH_PROVIDER = "comfyui"
    settings.FLASH_MODEL = "sd_xl_turbo_1.0_fp16.safetensors"
    settings.COMFYUI_FLASH_URLS, settings.COMFYUI_POLL_SECONDS = [comfy.url], 0.02
    fund(team, owner)
    drafts = submit(team, owner, count=2, size="512", aspect="4:5", prompt="a harbour at dawn")
    broken = submit(team, owner, count=1, prompt="a harbour [fault:execution_error]")
    drain("flash")

    for generation in drafts.generations.select_related("asset"):
        assert generation.status == Status.SUCCEEDED
        assert (generation.asset.width, generation.asset.height) == (448, 576)
    generation = broken.generations.get()
    assert generation.status == Status.FAILED
    assert "node 5 (KSampler) failed: Allocation on device 0" in generation.error


def test_canceling_a_batch_stops_its_running_comfyui_job_and_releases_it(
    owner, team, transactional_db, comfy, settings
):
    import time

    from billing.selectors import wallet_balance
    from generation.models import Status
    from generation.services import batch_cancel
    from generation.tasks import run_lane
    from tests.reliability.conftest import fund, submit

    settings.FLASH_PROVIDER = "comfyui"
    settings.FLASH_MODEL = "sd_xl_turbo_1.0_fp16.safetensors"
    settings.COMFYUI_FLASH_URLS, settings.COMFYUI_POLL_SECONDS = [comfy.url], 0.02
    fund(team, owner)
    before = wallet_balance(team)
    batch = submit(team, owner, count=1, size="512", aspect="1:1", prompt="[fault:slow] a harbour")
    worker = threading.Thread(target=run_lane, args=["flash"])
    worker.start()
    deadline = time.monotonic() + 10
    while batch.generations.get().status != Status.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    batch_cancel(batch=batch)
    worker.join(timeout=15)
    generation = batch.generations.get()
    assert generation.status == Status.CANCELED
    assert "Nothing was charged" in generation.error
    assert wallet_balance(team) == before


# --- as the real server behaves -----------------------------------------------------------------


def render_in_thread(provider, *args, **kw):
    """Start a render; the returned function joins it and gives its result or raises its error."""
    outcome = {}

    def run():
        try:
            outcome["result"] = provider.render(request(*args, **kw))
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()

    def join(timeout=20):
        thread.join(timeout)
        assert not thread.is_alive(), "the render did not end"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    return join


def test_a_restart_that_loses_the_queue_is_waited_out_and_the_job_queued_again(comfy):
    comfy.run_seconds = 1.5  # long enough that the restart lands while it runs
    provider = make_provider(comfy.url, outage_seconds=30)
    join = render_in_thread(provider)
    wait_for(lambda: comfy.running is not None)
    comfy.restart(down_seconds=1.5)  # ComfyUI forgets its queue and takes a while to return
    result = join()
    assert Image.open(io.BytesIO(result.image)).size == catalog.pixel_size("1K", "16:9")
    assert len(comfy.submitted) == 2  # queued again once it answered
    # (On a slow machine the first run may have ended just before the restart,
    # unheard; the image is the second's.)
    assert comfy.executed[-1] == result.usage["prompt_id"]


def test_a_prompt_deleted_at_the_server_is_noticed_through_the_queue_and_queued_again(comfy):
    comfy.run_seconds = 0.3
    other = comfy.put({"9": {"class_type": "PreviewImage", "inputs": {}}}, "other", ["9"], "slow")
    provider = make_provider(comfy.url, check_seconds=0.2)
    join = render_in_thread(provider)
    wait_for(lambda: comfy.running is other and comfy.pending)  # ours waits behind it
    (ours,) = comfy.pending
    with httpx.Client(base_url=comfy.url) as someone:
        # /history answers 200 {} for it before and after: only /queue tells.
        assert someone.get(f"/history/{ours.prompt_id}").json() == {}
        someone.post("/queue", json={"delete": [ours.prompt_id]})
        assert someone.get(f"/history/{ours.prompt_id}").json() == {}
        time.sleep(0.5)
        someone.post("/interrupt", json={"prompt_id": other.prompt_id})
    result = join()
    assert len(comfy.submitted) == 2
    assert result.usage["prompt_id"] != ours.prompt_id


def test_completion_comes_from_the_websocket_without_polling_the_history(comfy):
    # A poll interval and a check interval far longer than the job: only the
    # websocket can end it this fast.
    provider = make_provider(comfy.url, poll_seconds=10, check_seconds=60)
    started = time.monotonic()
    result = provider.render(request())
    assert time.monotonic() - started < 5  # a poll would have taken 10
    assert f"GET /history/{result.usage['prompt_id']}" not in comfy.paths


def test_without_a_websocket_the_history_is_the_fallback(comfy, monkeypatch):
    from generation.providers.comfyui_servers import ComfyUIServer

    monkeypatch.setattr(ComfyUIServer, "listen", lambda self, timeout: False)
    result = make_provider(comfy.url).render(request())
    assert f"GET /history/{result.usage['prompt_id']}" in comfy.paths


@pytest.fixture
def old_comfy():
    with FakeComfyUI(version="0.3.50") as server:  # before /interrupt took a prompt_id
        yield server


def test_on_an_old_server_a_cancel_does_not_interrupt_another_clients_job(old_comfy, caplog):
    other = old_comfy.put(
        {"9": {"class_type": "PreviewImage", "inputs": {}}}, "other", ["9"], "slow"
    )
    canceled = threading.Event()
    provider = make_provider(old_comfy.url)
    join = render_in_thread(provider, cancel_check=canceled.is_set)
    wait_for(lambda: old_comfy.running is other and old_comfy.pending)  # ours waits behind it
    canceled.set()
    with pytest.raises(CanceledError):
        join()
    assert old_comfy.interrupts == []  # it would have stopped the other client's job
    assert old_comfy.running is other and old_comfy.stopped == []
    assert old_comfy.pending == []  # ours was taken off the queue
    assert "reports version '0.3.50'; before 0.3.57 /interrupt stops whatever" in caplog.text
    # What the provider avoided: on this server an interrupt naming our prompt
    # stops the other client's job.
    with httpx.Client(base_url=old_comfy.url) as someone:
        someone.post("/interrupt", json={"prompt_id": "ours, long gone"})
    wait_for(lambda: old_comfy.stopped == [other.prompt_id])


def test_on_an_old_server_our_running_job_is_still_interrupted(old_comfy):
    canceled = threading.Event()
    join = render_in_thread(
        make_provider(old_comfy.url), "[fault:slow] fox", cancel_check=canceled.is_set
    )
    wait_for(lambda: old_comfy.running is not None)
    canceled.set()
    with pytest.raises(CanceledError):
        join()
    wait_for(lambda: old_comfy.stopped)
    assert len(old_comfy.interrupts) == 1


def test_a_lane_spreads_its_jobs_over_its_servers_one_in_flight_on_each(comfy):
    with FakeComfyUI(run_seconds=0.2) as second:
        comfy.run_seconds = 0.2
        provider = make_provider({"flash": [comfy.url, second.url]})
        joins = [render_in_thread(provider, f"fox {n}") for n in range(6)]
        for join in joins:
            join()
        assert len(comfy.executed) + len(second.executed) == 6
        assert comfy.executed and second.executed
        assert comfy.peak_queue <= 1 and second.peak_queue <= 1


def test_a_server_that_is_down_is_skipped_and_its_job_goes_to_another(comfy):
    second = FakeComfyUI().start()
    second.stop()  # listed, but not answering
    provider = make_provider({"flash": [second.url, comfy.url]}, outage_seconds=30)
    joins = [render_in_thread(provider, f"fox {n}") for n in range(4)]
    for join in joins:
        join()
    assert len(comfy.executed) == 4
    assert second.submitted == []


def test_a_slot_held_by_a_killed_worker_is_freed_when_its_lease_ends(settings):
    from generation.providers.comfyui_pool import BUSY, ServerPool

    pool = ServerPool(settings.CELERY_BROKER_URL, lease_seconds=0.3)
    held, _ = pool.try_acquire(["http://gpu-1"])
    assert held is not None  # and never released: its worker died
    assert pool.try_acquire(["http://gpu-1"]) == (None, BUSY)
    time.sleep(0.35)
    again, _ = pool.try_acquire(["http://gpu-1"])
    assert again is not None
    again.release()


def test_a_partly_valid_workflow_is_refused_before_any_branch_runs(comfy, tmp_path):
    workflow = json.loads((WORKFLOWS / "draft.json").read_text())
    workflow["31"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "gone.ckpt"}}
    workflow["32"] = {
        "class_type": "VAEDecode",
        "inputs": {"samples": ["5", 0], "vae": ["31", 2]},
    }
    workflow["33"] = {"class_type": "SaveImage", "inputs": {"images": ["32", 0]}}
    provider = make_provider(comfy.url, workflows={"flash": write_workflow(tmp_path, workflow)})
    with pytest.raises(PermanentError) as caught:
        provider.render(request())
    assert caught.value.message.startswith(
        "ComfyUI refused the workflow custom.json: node 31 (CheckpointLoaderSimple): "
        "ckpt_name 'gone.ckpt' is not one this server has (sd_xl_turbo_1.0_fp16.safetensors"
    )
    assert comfy.submitted == []  # ComfyUI would have run the valid branch


def test_a_missing_node_class_is_named_in_words(comfy, tmp_path):
    workflow = json.loads((WORKFLOWS / "draft.json").read_text())
    workflow["2"]["class_type"] = "CLIPTextEncodeSDXLPlus"
    provider = make_provider(comfy.url, workflows={"flash": write_workflow(tmp_path, workflow)})
    with pytest.raises(PermanentError) as caught:
        provider.render(request())
    assert caught.value.message == (
        "The workflow custom.json uses the node class 'CLIPTextEncodeSDXLPlus' (node 2), which "
        f"the ComfyUI server at {comfy.url} does not have. Install the custom node that "
        "provides it there, or change the workflow."
    )
    assert comfy.submitted == []


def test_a_missing_node_class_refused_at_queueing_is_named_the_same_way(comfy):
    from generation.providers.comfyui import _rejected

    # What ComfyUI 0.3.64 answers POST /prompt (execution.py validate_prompt).
    error = {
        "type": "missing_node_type",
        "message": "Cannot execute because node CLIPTextEncodeSDXLPlus does not exist.",
        "details": "Node ID '#2'",
        "extra_info": {},
    }
    workflow = {"2": {"class_type": "CLIPTextEncodeSDXLPlus", "inputs": {}}}
    refused = _rejected("draft.json", comfy.url, workflow, error, {})
    assert refused.message.startswith(
        "The workflow draft.json uses the node class 'CLIPTextEncodeSDXLPlus' (node 2)"
    )


def test_what_a_render_leaves_on_the_comfyui_box_is_temporary(provider, comfy):
    provider.render(request("hero", tier="pro", refs=(encoded("PNG"),)))
    assert {kind for kind, _ in comfy.files} == {"temp"}
    assert all(name.endswith(" [temp]") for name in comfy.uploads)
    assert comfy.history == {}
    comfy.restart()  # ComfyUI empties its temp folder when it starts
    assert comfy.files == {} and comfy.uploads == {}


@pytest.mark.slow
def test_a_grid_on_two_servers_survives_a_restart_of_one_with_real_workers(
    owner, team, lane_workers, settings, comfy
):
    from generation.models import OUTSTANDING, Status
    from tests.reliability.conftest import fund, submit

    with FakeComfyUI(run_seconds=0.3) as second:
        comfy.run_seconds = 0.3
        settings.FLASH_PROVIDER = "comfyui"
        settings.FLASH_MODEL = "sd_xl_turbo_1.0_fp16.safetensors"
        lane_workers.env.update(
            FLASH_PROVIDER="comfyui",
            FLASH_MODEL=settings.FLASH_MODEL,
            COMFYUI_FLASH_URLS=f"{comfy.url},{second.url}",
            COMFYUI_POLL_SECONDS="0.05",
            COMFYUI_OUTAGE_MINUTES="1",
        )
        fund(team, owner)
        batch = submit(team, owner, count=8, size="512", aspect="1:1", prompt="a harbour")
        lane_workers.start("flash", concurrency=3)
        servers = (comfy, second)
        # Whichever server is running a prompt first goes down (on a loaded
        # machine either may take the grid's first images).
        try:
            wait_for(lambda: any(s.running is not None for s in servers), timeout=30)
        except AssertionError:
            raise AssertionError(
                f"nothing ran: submitted {len(comfy.submitted)} and {len(second.submitted)};"
                f" statuses {list(batch.generations.values_list('status', 'error'))}; "
                + (lane_workers.log_dir / "worker-flash.log").read_text()[-3000:]
            )
        lost = next(s for s in servers if s.running is not None)
        lost.restart(down_seconds=2)  # its running prompt is lost with the queue
        wait_for(lambda: not batch.generations.filter(status__in=OUTSTANDING).exists(), timeout=60)
        statuses = list(batch.generations.values_list("status", "error"))
        assert statuses == [(Status.SUCCEEDED, "")] * 8
        # A prompt that ended just as the server went away may run again elsewhere.
        assert len(comfy.executed) + len(second.executed) >= 8
        # Never more than its one slot, across processes.
        assert comfy.peak_queue <= 1 and second.peak_queue <= 1


def test_a_lane_without_servers_says_which_setting_to_set():
    provider = make_provider({"flash": [], "pro": ["http://127.0.0.1:9"]})
    with pytest.raises(PermanentError, match="set COMFYUI_FLASH_URLS"):
        provider.render(request())
