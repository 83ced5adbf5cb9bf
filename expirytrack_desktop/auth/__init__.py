"""Login and secrets: credentials, OAuth from the desktop, token lifecycle, secret storage.

No Qt here: the window and the CLI are two faces of these functions.

- :mod:`.secrets` — :class:`SecretStore` (OS keyring, or a passphrase-encrypted file).
- :mod:`.credentials` — API key / secret / redirect URI: validation and storage.
- :mod:`.token` — the 03:30 IST expiry rule, :class:`TokenManager` (save, load, whoami, logout).
- :mod:`.oauth` — the browser login with a one-shot loopback listener.
"""
