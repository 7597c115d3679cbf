"""Which language to speak outside an interaction: the member's last known one, else the server's.

An interaction tells the bot the member's language (`interaction.locale`); a status card edited by the poller,
the thread post with the video, a mention reply, a DM or an audit line has no interaction to ask. So each
member's language is remembered when they interact, durably (state store key `locale:<user_id>`), and so is
the language a moderator set for the server's public posts (`/seedance-admin language`, key
`server-locale:<guild_id>`).

The language of a public post about a member's request, first that applies:
1. the requester's last known language: the card is first posted in the language of the interaction that
   asked for it, and every later edit of it, its thread and its video must read the same;
2. the language a moderator set for the server;
3. Discord's preferred locale of the server (a Community server's setting);
4. English.
A post about no member (an audit line, a budget alert) starts at 2. So the moderators' setting decides for
everyone the bot never heard from (a first mention, the audit channel) without ever switching a member's own
card to another language halfway through.

Discord-free: the Discord side passes the codes in (`str(interaction.locale)`, `str(guild.preferred_locale)`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from bot.i18n import Language, language_of
from bot.jobs.ports import StateStore

PREFIX = "locale:"
#: Where the language a moderator set for a server's public posts is kept.
SERVER_PREFIX = "server-locale:"
#: Members whose language is kept in memory (least recently used first out): the busy ones, so a burst of
#: interactions costs no database read or write once each member is known.
CACHE_SIZE = 50_000
#: How long a server's language is trusted before it is read again (another process may have changed it).
SERVER_CACHE_S = 60.0


def _key(user_id: int) -> str:
    return f"{PREFIX}{user_id}"


class MemberLanguages:
    """Each member's last known language, written only when it changes, read through an in-memory cache."""

    def __init__(
        self,
        state: StateStore,
        *,
        cache_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._cache_size = cache_size
        # None: looked up and not stored (a member the bot never heard from), so not read again.
        self._known: OrderedDict[int, Language | None] = OrderedDict()
        self._clock = clock
        #: The language set for each server asked about, and until when that answer is trusted (few servers:
        #: kept whole). Read again after SERVER_CACHE_S, so a change made through another process (shards)
        #: is seen within that time, and an audit line per job costs no read.
        self._servers: dict[int, tuple[Language | None, float]] = {}

    async def remember(self, user_id: int, discord_locale: object) -> bool:
        """Note the language of `user_id`'s interaction; True when it was written (it changed)."""
        language = language_of(discord_locale)
        cached = user_id in self._known
        if cached and self._known[user_id] is language:
            self._known.move_to_end(user_id)
            return False
        # Cached before any await: posts made meanwhile already use it, and a burst of interactions from one
        # member reads and writes once, not once each.
        self._keep(user_id, language)
        if not cached and await self._state.get(_key(user_id)) == language.value:
            return False  # known from before a restart: nothing changed
        await self._state.put(_key(user_id), language.value)
        return True

    async def of_member(self, user_id: int) -> Language | None:
        """The member's last known language, or None when they never interacted."""
        if user_id in self._known:
            self._known.move_to_end(user_id)
            return self._known[user_id]
        stored = await self._state.get(_key(user_id))
        language = language_of(stored) if stored is not None else None
        if user_id not in self._known:  # an interaction noted meanwhile is newer than what was read
            self._keep(user_id, language)
        return self._known.get(user_id, language)

    async def for_post(
        self, user_id: int | None, server_locale: object = None, *, guild_id: int | None = None
    ) -> Language:
        """The language of a post about `user_id`'s request that everyone sees (see the module's docstring):
        theirs when known, else the one a moderator set for `guild_id`, else the server's preferred one
        (`server_locale`, a Discord locale), else English."""
        known = await self.of_member(user_id) if user_id is not None else None
        if known is not None:
            return known
        chosen = await self.of_server(guild_id) if guild_id is not None else None
        if chosen is not None:
            return chosen
        return language_of(server_locale) if server_locale is not None else Language.ENGLISH

    async def of_server(self, guild_id: int) -> Language | None:
        """The language a moderator set for the server's public posts, or None ("automatic")."""
        cached = self._servers.get(guild_id)
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        stored = await self._state.get(f"{SERVER_PREFIX}{guild_id}")
        language = language_of(stored) if stored else None
        self._servers[guild_id] = (language, self._clock() + SERVER_CACHE_S)
        return language

    async def set_server(self, guild_id: int, language: Language | None) -> None:
        """Set (or, with None, clear: "automatic") the language of the server's public posts."""
        # Written first: a failed write leaves the cache as the store is.
        key = f"{SERVER_PREFIX}{guild_id}"
        if language is None:
            await self._state.delete(key)
        else:
            await self._state.put(key, language.value)
        self._servers[guild_id] = (language, self._clock() + SERVER_CACHE_S)

    def _keep(self, user_id: int, language: Language | None) -> None:
        self._known[user_id] = language
        self._known.move_to_end(user_id)
        while len(self._known) > self._cache_size:
            self._known.popitem(last=False)
