"""Exports to S3 on an S3-compatible server on 127.0.0.1 (moto's server mode): tenant files
read from S3, chunk parts and the archive written with multipart upload, a SigV4 presigned
link valid exactly 7 days, downloaded with httpx and checked against the SHA-256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer
from temporalio.testing import WorkflowEnvironment

from lifecycle.dev.devserver import free_port
from lifecycle.storage.exports import s3_options
from lifecycle.storage.objectstore import PART_SIZE
from tests.support.export_helpers import make_app, read_archive
from tests.support.fixtures import make_settings, running_stack, uid
from tests.support.tenant_data import new_tenant


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def test_export_to_s3_multipart_and_presigned(
    dev_env: WorkflowEnvironment, tmp_path: Path, s3_endpoint: str
) -> None:
    app = await make_app(tmp_path, projects_per_org=4)
    big = os.urandom(PART_SIZE + 3 * 1024 * 1024)  # an archive of more than one part
    datamap = app.datamap.read_text().replace(
        f'url = "file://{app.files}/{{tenant_key}}/"',
        f'url = "s3://app-files/uploads/{{tenant_key}}/"\nendpoint_url = "{s3_endpoint}"',
    )
    app.datamap.write_text(datamap)
    settings = make_settings(
        tmp_path,
        data_map_path=app.datamap,
        export_storage_type="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket="exports",
        s3_access_key_id="test",
        s3_secret_access_key="test",
        data_export_chunk_size_mb=8,
    )
    async with s3_options(settings).client() as s3:  # type: ignore[attr-defined]
        await s3.create_bucket(Bucket="exports")
        await s3.create_bucket(Bucket="app-files")
        await s3.put_object(Bucket="app-files", Key="uploads/7/video.bin", Body=big)
        await s3.put_object(Bucket="app-files", Key="uploads/7/a/readme.txt", Body=b"hello")
        await s3.put_object(Bucket="app-files", Key="uploads/8/other.txt", Body=b"not yours")

    tenant = uid("s3")
    async with running_stack(dev_env, settings) as lc:
        await new_tenant(lc, tenant, data_key="7")
        started = await lc.exports.export_tenant(tenant)
        await lc.core.handle(started.workflow_id).result()
        view = await lc.exports.get_export(started.export_id)
        assert view.status == "completed" and view.download_url

        url = httpx.URL(view.download_url)
        assert (
            url.host == "127.0.0.1"
            and url.path == f"/exports/archives/{tenant}/{view.export_id}.zip"
        )
        assert url.params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"  # SigV4, not SigV2
        assert url.params["X-Amz-Expires"] == str(7 * 24 * 3600)
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == view.sha256
        assert len(response.content) == view.size_bytes > PART_SIZE

        async with s3_options(settings).client() as s3:  # type: ignore[attr-defined]
            head = await s3.head_object(
                Bucket="exports", Key=f"archives/{tenant}/{view.export_id}.zip"
            )
            assert head["ETag"].strip('"').endswith("-2")  # uploaded in two parts
            staging = await s3.list_objects_v2(Bucket="exports", Prefix=f"staging/{tenant}/")
            assert staging.get("KeyCount", 0) == 0  # discarded after assembly

        manifest, archive = read_archive(response.content)
        files = {f["path"]: f for f in manifest["files"] if f["path"].startswith("files/")}
        assert set(files) == {"files/0/video.bin", "files/0/a/readme.txt"}
        assert files["files/0/video.bin"]["sha256"] == hashlib.sha256(big).hexdigest()
        assert archive.read("files/0/a/readme.txt") == b"hello"

        # the dpo's authenticated download streams the same archive from S3
        served = await lc.exports.serve_archive(view.export_id, actor="dpo@corp.io", role="dpo")
        streamed = b"".join([chunk async for chunk in served.chunks()])
        assert served.path is None and hashlib.sha256(streamed).hexdigest() == view.sha256

        # the purge's hook removes every archive and staging object of the tenant
        assert await lc.exports.storage.delete_tenant_exports(tenant) == 2
        async with s3_options(settings).client() as s3:  # type: ignore[attr-defined]
            left = await s3.list_objects_v2(Bucket="exports", Prefix=f"archives/{tenant}/")
            assert left.get("KeyCount", 0) == 0
