"""Files, uploads and cached contents through the Vault: each user's own, pinned to the key that made them.

Listing answers from the Vault's own records (Google's list would show every user of the
same project). Reading, deleting and patching check ownership first -- anything else is
"not found" -- and then go out with the upstream key that holds the resource, never another.
Uploads are relayed piece by piece: the start answer's upload URL is replaced by a Vault URL
whose token is the credential (`vault.resources.uploads`); chunks are streamed to Google's
URL without ever being held whole. Only the fields the Vault understands are sent upstream.

`records` lists, reads and deletes; `caches` creates and extends caches (storage charged);
`uploads` relays uploads; `common` holds what they share.
"""

from flask import Response

from vault.access import Caller
from vault.billing.meter import Meter
from vault.proxy.resources.caches import create_cache, patch_cache
from vault.proxy.resources.records import delete_resource, get_resource, list_resources
from vault.proxy.resources.uploads import start_upload, upload_chunk
from vault.proxy.routes import Call
from vault.runtime import VaultRuntime

__all__ = ["serve_resource", "upload_chunk"]


def serve_resource(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, payload: dict | None,
                   body_size: int) -> Response:
    """A files, cachedContents or upload-start call of an authenticated caller (metered by `meter`)."""
    handler = HANDLERS[call.action.name]
    return handler(call, vault, caller, meter, payload, body_size)


HANDLERS = {
    "files.list": list_resources, "files.get": get_resource, "files.delete": delete_resource,
    "cachedContents.list": list_resources, "cachedContents.get": get_resource,
    "cachedContents.delete": delete_resource, "cachedContents.create": create_cache,
    "cachedContents.patch": patch_cache, "files.upload": start_upload,
}
