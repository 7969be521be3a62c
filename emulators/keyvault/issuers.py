"""Certificate issuers and certificate contacts of an emulated vault.

Every function expects the caller to hold the emulator's lock.
"""

from __future__ import annotations

import copy

from emulators.keyvault import policy as policies
from emulators.keyvault.errors import KeyVaultError, bad_parameter
from emulators.keyvault.store import Vault

def set_issuer(vault: Vault, name: str, body: dict) -> dict:
    """Create or replace an issuer (PUT)."""
    provider = body.get("provider")
    if not isinstance(provider, str) or provider.lower() not in policies.INTEGRATED_PROVIDERS:
        raise bad_parameter(f"Issuer provider {provider!r} is not supported. Use DigiCert or GlobalSign.")
    now = vault.emulator.epoch()
    previous = vault.issuers.get(name.lower())
    issuer = {
        "name": name,
        "provider": provider,
        "credentials": copy.deepcopy(body.get("credentials")),
        "org_details": copy.deepcopy(body.get("org_details")),
        "enabled": (body.get("attributes") or {}).get("enabled", True),
        "created": previous["created"] if previous else now,
        "updated": now,
    }
    vault.issuers[name.lower()] = issuer
    return _issuer_body(vault, issuer)


def update_issuer(vault: Vault, name: str, body: dict) -> dict:
    """Update the fields of an issuer that the PATCH body names."""
    issuer = _issuer(vault, name)
    provider = body.get("provider")
    if provider is not None:
        if provider.lower() not in policies.INTEGRATED_PROVIDERS:
            raise bad_parameter(f"Issuer provider {provider!r} is not supported. Use DigiCert or GlobalSign.")
        issuer["provider"] = provider
    for field_name in ("credentials", "org_details"):
        if body.get(field_name) is not None:
            issuer[field_name] = {**(issuer.get(field_name) or {}), **body[field_name]}
    enabled = (body.get("attributes") or {}).get("enabled")
    if enabled is not None:
        issuer["enabled"] = bool(enabled)
    issuer["updated"] = vault.emulator.epoch()
    return _issuer_body(vault, issuer)


def get_issuer(vault: Vault, name: str) -> dict:
    """Return an issuer, without the credentials' password."""
    return _issuer_body(vault, _issuer(vault, name))


def delete_issuer(vault: Vault, name: str) -> dict:
    """Delete an issuer and return what it was."""
    body = _issuer_body(vault, _issuer(vault, name))
    del vault.issuers[name.lower()]
    return body


def list_issuers(vault: Vault, query: dict) -> dict:
    """Return one page of issuers: id and provider of each."""
    size = vault.page_size(query)
    keys = sorted(vault.issuers)
    start = int(query.get("$skiptoken") or 0)
    items = [
        {"id": f"{vault.base_url}/certificates/issuers/{vault.issuers[k]['name']}", "provider": vault.issuers[k]["provider"]}
        for k in keys[start : start + size]
    ]
    body: dict = {"value": items, "nextLink": None}
    if start + size < len(keys):
        body["nextLink"] = vault.next_link("/certificates/issuers", str(start + size), size)
    return body


def set_contacts(vault: Vault, body: dict) -> dict:
    """Replace the vault's certificate contacts."""
    contacts = body.get("contacts")
    if not isinstance(contacts, list):
        raise bad_parameter("contacts must be an array of objects with email, name and phone.")
    cleaned = []
    for contact in contacts:
        if not isinstance(contact, dict) or not (contact.get("email") or contact.get("name") or contact.get("phone")):
            raise bad_parameter("Each contact needs at least one of email, name and phone.")
        cleaned.append({k: contact[k] for k in ("email", "name", "phone") if contact.get(k) is not None})
    vault.contacts = cleaned
    return _contacts_body(vault, cleaned)


def get_contacts(vault: Vault) -> dict:
    """Return the contacts, or an empty list when none are set, as Key Vault does."""
    return _contacts_body(vault, vault.contacts or [])


def delete_contacts(vault: Vault) -> dict:
    """Remove all contacts and return the ones removed."""
    removed = vault.contacts or []
    vault.contacts = None
    return _contacts_body(vault, removed)


def _contacts_body(vault: Vault, contacts: list) -> dict:
    return {"id": f"{vault.base_url}/certificates/contacts", "contacts": copy.deepcopy(contacts)}


def _issuer(vault: Vault, name: str) -> dict:
    issuer = vault.issuers.get(name.lower())
    if issuer is None:
        raise KeyVaultError(404, "CertificateIssuerNotFound", f"Issuer not found: {name}")
    return issuer


def _issuer_body(vault: Vault, issuer: dict) -> dict:
    body: dict = {
        "id": f"{vault.base_url}/certificates/issuers/{issuer['name']}",
        "provider": issuer["provider"],
        "attributes": {"enabled": issuer["enabled"], "created": issuer["created"], "updated": issuer["updated"]},
    }
    credentials = issuer.get("credentials")
    if credentials:
        # Key Vault never returns the password it stores.
        body["credentials"] = {k: v for k, v in credentials.items() if k != "pwd"}
    if issuer.get("org_details"):
        body["org_details"] = copy.deepcopy(issuer["org_details"])
    return body
