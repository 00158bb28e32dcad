"""The barrier: every secret crosses the vault before storage sees it (as in HashiCorp Vault).

master key (KEK, from the environment) → wraps one data key (DEK) per (project, tenant)
→ AES-256-GCM seals each secret, bound by associated data to its row and field.
"""

from authpipe_server.vault.barrier import Place, Vault
from authpipe_server.vault.errors import DecryptionFailed, MasterKeyMismatch, TenantShredded, VaultError
from authpipe_server.vault.keys import MasterKey

__all__ = ["DecryptionFailed", "MasterKey", "MasterKeyMismatch", "Place", "TenantShredded", "Vault", "VaultError"]
