"""Instagram through Facebook Login (docs/providers/instagram.md): Facebook's tokens and errors; the
connection's account is the Instagram professional account linked to one of the user's Pages."""

from __future__ import annotations

from authpipe_server.connections.secrets import TokenSet
from authpipe_server.providers.base import Account, Described, Resource
from authpipe_server.providers.errors import CredentialsRejected
from authpipe_server.providers.http import first as first_text, clean_text
from authpipe_server.providers.hooks.facebook import FacebookProvider
from authpipe_server.providers.spec import Request


class InstagramProvider(FacebookProvider):
    async def describe(self, tokens: TokenSet) -> Described:
        accounts: list[Resource] = []
        for page in await self.pages(tokens.access_token, "id,name,instagram_business_account"):
            linked = page.get("instagram_business_account") or {}
            if not linked.get("id"):
                continue
            user = await self.api(
                Request("GET", f"/{linked['id']}", params={"fields": "id,username,name"}), tokens.access_token
            )
            accounts.append(Resource(f"ig:{clean_text(linked['id'])}", first_text(user, ("username", "name"))))
        if not accounts:
            raise CredentialsRejected(
                "no_instagram_account",
                "none of your Facebook Pages has an Instagram professional account linked to it",
            )
        first = accounts[0]
        return Described(Account(first.id.removeprefix("ig:"), first.name), resources=accounts)
