"""A pipeline's whole round trip over HTTP with real workers: submit, poll, download, read."""

import time

import httpx
import pytest

from generation.imaging import read_metadata

from .conftest import fund, token_for


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_submit_poll_promote_and_download_over_http(live_server, owner, both_lanes):
    team = owner.teams.get()
    fund(team, owner)
    headers = {"Authorization": f"Bearer {token_for(owner)}"}
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=30) as api:
        before = api.get("/balance").json()["available"]
        submitted = api.post(
            "/batches",
            json={"prompt": "a paper boat on a pond", "tier": "flash", "size": "512",
                  "aspect": "3:2", "count": 3, "seed": 77},
        )  # fmt: skip
        assert submitted.status_code == 201, submitted.text
        batch = submitted.json()

        def wait(batch_id: int) -> dict:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                body = api.get(f"/batches/{batch_id}").json()
                if body["status"] == "finished":
                    return body
                time.sleep(0.2)
            raise AssertionError(f"batch {batch_id} did not finish: {body['progress']}")

        done = wait(batch["id"])
        assert done["progress"]["done"] == 3 and done["progress"]["failed"] == 0
        assert [image["status"] for image in done["images"]] == ["succeeded"] * 3
        assert api.get("/balance").json()["available"] == before - 3 * 45

        first = done["images"][0]
        download = api.get(first["download_url"])
        assert download.status_code == 200
        assert (
            'filename="a-paper-boat-on-a-pond_seed77_flash-512_'
            in (download.headers["content-disposition"])
        )
        meta = read_metadata(download.content)
        assert meta["prompt"] == "a paper boat on a pond" and meta["seed"] == 77
        assert meta["size"] == "512" and meta["aspect"] == "3:2"

        promoted = api.post("/images/promote", json={"ids": [first["id"]], "size": "2K"})
        assert promoted.status_code == 201, promoted.text
        pro = wait(promoted.json()["id"])
        assert pro["tier"] == "pro" and pro["progress"]["done"] == 1
        meta = read_metadata(api.get(pro["images"][0]["download_url"]).content)
        assert meta["tier"] == "pro" and meta["size"] == "2K" and meta["seed"] == 77

        listed = api.get("/images", params={"tier": "pro"}).json()["images"]
        assert [image["id"] for image in listed] == [pro["images"][0]["id"]]
