#!/bin/sh
# Set the certificate contacts of every vault. Key Vault keeps contacts in its data plane, which Azure Resource
# Manager cannot write, so this runs after provisioning with the operator's own sign-in.
set -eu

vaults="${CERTRENEW_VAULTS:-}"
contacts="${CERTRENEW_CERTIFICATE_CONTACTS:-}"

if [ -z "$contacts" ]; then
    echo "postprovision: no certificate contacts given, so the vaults keep theirs."
    echo "Set them with 'azd env set CERTRENEW_CERTIFICATE_CONTACTS \"ops@contoso.com pki@contoso.com\"' and run 'azd provision'."
    exit 0
fi

if command -v certrenew >/dev/null 2>&1; then
    for url in $vaults; do
        vault=${url#https://}
        vault=${vault%%.*}
        echo "postprovision: setting the certificate contacts of vault $vault."
        # A failure here must not stop `azd up`: the contacts can be set again at any time.
        # shellcheck disable=SC2086 # one argument per address
        if ! certrenew contacts set "$vault" $contacts; then
            echo "postprovision: setting the contacts of vault $vault failed. A new role assignment can take a few" >&2
            echo "minutes to apply: run 'azd hooks run postprovision' again later." >&2
        fi
    done
    exit 0
fi

echo "postprovision: the certrenew command is not installed here, so the contacts are not set."
echo "Run these commands, signed in as someone who may manage the vaults' certificate contacts:"
for url in $vaults; do
    vault=${url#https://}
    vault=${vault%%.*}
    for email in $contacts; do
        echo "  az keyvault certificate contact add --vault-name $vault --email $email"
    done
done
