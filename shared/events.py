"""Key Vault certificate events as Event Grid delivers them."""

from __future__ import annotations

NEAR_EXPIRY = "Microsoft.KeyVault.CertificateNearExpiry"
EXPIRED = "Microsoft.KeyVault.CertificateExpired"
NEW_VERSION_CREATED = "Microsoft.KeyVault.CertificateNewVersionCreated"

# Event types each Event Grid function handles, by function name. The Event Grid subscriptions in infra/
# filter on these, so a function only receives the events it handles.
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "on_certificate_expiring": (NEAR_EXPIRY, EXPIRED),
    "on_certificate_version_created": (NEW_VERSION_CREATED,),
}
