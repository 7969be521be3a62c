"""The asynchronous SDK client against the emulator: create, get, list paging and merge."""

from __future__ import annotations

import asyncio

from azure.keyvault.certificates import CertificatePolicy

from .helpers import der, make_async_client


def run(coroutine):
    return asyncio.run(coroutine)


def test_async_create_get_and_list(emulator):
    async def scenario():
        async with make_async_client(emulator) as client:
            poller = await client.create_certificate(
                "web", CertificatePolicy(issuer_name="Self", subject="CN=web"), _polling_interval=0
            )
            fetched = await client.get_certificate("web")
            names = [item.name async for item in client.list_properties_of_certificates()]
            return poller, fetched, names

    emulator.seed_certificates("contoso-certs", 30)
    created, fetched, names = run(scenario())

    assert created.cer == fetched.cer
    assert len(names) == 31
    pages = [e for e in emulator.request_log() if e["route"] == "GET /certificates" and e["status"] == 200]
    assert len(pages) == 2


def test_async_merge(emulator):
    async def scenario():
        async with make_async_client(emulator) as client:
            operation = await client.create_certificate("api", CertificatePolicy(issuer_name="Unknown", subject="CN=api"))
            signed = emulator.sign_csr(operation.csr)
            return signed, await client.merge_certificate("api", [der(signed)])

    signed, merged = run(scenario())

    assert merged.cer == der(signed)
    assert merged.properties.enabled is True
