"""/docs works offline: Swagger UI from our own static files, nothing from a CDN."""

from __future__ import annotations

import re

from tests.web.conftest import WebClient


async def test_docs_page_references_only_our_own_origin(client: WebClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    references = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert references, "the page loads no assets at all"
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references)
    assert "http://" not in docs.text
    assert "https://" not in docs.text
    for asset in references:
        answer = await client.get(asset)
        assert answer.status_code == 200, asset
    assert (await client.get("/openapi.json")).status_code == 200


async def test_docs_policy_allows_nothing_from_elsewhere(client: WebClient) -> None:
    policy = (await client.get("/docs")).headers["content-security-policy"]
    assert "http" not in policy
    assert "unsafe-inline" not in policy
    assert "script-src 'self' 'sha256-" in policy
