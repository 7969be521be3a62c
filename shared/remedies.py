"""Remedies for failed renewals, by the error that Key Vault or the CA reported."""

from __future__ import annotations

from shared.keyvault import CertificateView

# Remedies by Key Vault error code. Codes are stable; messages are not, so messages only refine a remedy.
REMEDIES_BY_CODE = {
    "Forbidden": (
        "Give the app's managed identity the Key Vault Certificates Officer role on the vault, or the certificate "
        "permissions get, list, update and create in its access policy."
    ),
    "PendingCertificateNotFound": (
        "Someone deleted or merged the pending request. Check the certificate in the portal; run "
        "certrenew renew NAME to start again if it still needs a new version."
    ),
    "BadParameter": "Check the certificate policy in the portal; Key Vault rejected it for the new version.",
    "Conflict": "Another operation is running on this certificate. Wait for it, or cancel it with certrenew cancel NAME.",
    "ObjectIsDeletedButRecoverable": (
        "A deleted certificate of this name is in the vault's soft-delete state. Recover or purge it first."
    ),
}

# The CA refuses a CSR whose key it has signed before. Key Vault reports it in the message only.
CSR_REUSED_TEXT = "already been used"

DEFAULT_REMEDY = (
    "Read the error above, fix its cause in the vault or at the CA, then run certrenew renew NAME or wait for the "
    "next try."
)


def remedy_for(code: str | None, message: str | None, certificate: CertificateView | None = None) -> str:
    """Return the remedy for an error, naming the certificate where the remedy is a command."""
    if message and CSR_REUSED_TEXT in message.lower():
        remedy = (
            "The CA refuses a CSR for a key it has already signed. Turn off 'Reuse key on renewal' in the "
            "certificate's policy (key_props.reuse_key = false), then run certrenew renew NAME."
        )
    else:
        remedy = REMEDIES_BY_CODE.get(code or "", DEFAULT_REMEDY)
    if certificate is not None:
        remedy = remedy.replace("NAME", certificate.name)
    return remedy
