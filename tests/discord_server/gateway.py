"""The gateway: Discord's websocket, enough of it for discord.py's ``DiscordWebSocket``.

A connection gets HELLO, then IDENTIFY makes a *session* (READY, one GUILD_CREATE per guild) or RESUME
re-attaches an old one and replays what it missed. Every dispatch is numbered per session and kept in
the session's buffer, so a dropped connection loses nothing that a RESUME cannot bring back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable

from aiohttp import WSMsgType, web

from .encoding import encoder_for
from .sessions import Connection, Intent, Op, ResumeRecord, Session, without_content
from .state import Member, World


class Gateway:
    """Sessions, connections and dispatching. ``handle`` is the aiohttp websocket handler."""

    def __init__(self, world: World, token: str, heartbeat_interval_ms: int = 41_250) -> None:
        self.world = world
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.resume_url = ""  # set by the server once its port is known
        self.allowed_privileged_intents = {"message_content"}  # as ticked in the developer portal
        self.sessions: dict[str, Session] = {}
        self.connections: list[Connection] = []
        self.identifies: list[Session] = []
        self.resumes: list[ResumeRecord] = []
        self.protocol_errors: list[str] = []
        self.on_change: Callable[[], None] | None = None  # wakes the server's waiters
        self._open = asyncio.Event()
        self._open.set()

    # --- the websocket handler ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # A short close timeout: at teardown, a client that never answers our close frame must not stall.
        ws = web.WebSocketResponse(max_msg_size=0, timeout=2.0)
        await ws.prepare(request)
        try:
            encoder = encoder_for(request.query)
        except ValueError as exc:
            return await self._refuse(ws, 4000, str(exc))
        if request.query.get("v") not in ("9", "10"):
            return await self._refuse(ws, 4012, f"Invalid API version {request.query.get('v')!r}.")

        conn = Connection(ws, request, encoder)
        self.connections.append(conn)
        try:
            await self._open.wait()  # during an outage, new connections hang here before HELLO
            await conn.send({"op": Op.HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    await self._close(conn, 4002, f"expected a text frame, got {msg.type.name}")
                    break
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await self._close(conn, 4002, f"payload is not JSON: {msg.data[:80]!r}")
                    break
                await self._on_payload(conn, payload)
        finally:
            self.connections.remove(conn)
            session = conn.session
            if session is not None and session.connection is conn:
                session.connection = None
                # A client that closes with 1000/1001 means to end its session; Discord forgets it.
                if ws.close_code in (1000, 1001):
                    session.ended = True
        return ws

    async def _on_payload(self, conn: Connection, payload: dict) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == Op.HEARTBEAT:
            conn.heartbeats += 1
            await conn.send({"op": Op.HEARTBEAT_ACK})
        elif op == Op.IDENTIFY:
            await self._identify(conn, data or {})
        elif op == Op.RESUME:
            await self._resume(conn, data or {})
        elif conn.session is None:
            await self._close(conn, 4003, f"op {op} sent before IDENTIFY")
        elif op == Op.REQUEST_GUILD_MEMBERS:
            await self._send_members_chunk(conn.session, data or {})
        elif op in (Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE):
            pass  # accepted and ignored: nothing in the tests watches presences or voice
        else:
            await self._close(conn, 4001, f"unknown opcode {op}")

    async def _identify(self, conn: Connection, data: dict) -> None:
        if conn.session is not None:
            return await self._close(conn, 4005, "IDENTIFY sent twice on one connection")
        if data.get("token") != self.token:
            # Expected when a test passes a wrong token, so it is not a protocol error.
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = tuple(data.get("shard") or (0, 1))
        if len(shard) != 2 or not 0 <= shard[0] < shard[1]:
            return await self._close(conn, 4010, f"invalid shard {shard}")
        intents = data.get("intents")
        if not isinstance(intents, int):
            return await self._close(conn, 4013, "IDENTIFY without intents")
        requested = [name for bit, name in Intent.PRIVILEGED.items() if intents & bit]
        disallowed = [name for name in requested if name not in self.allowed_privileged_intents]
        if disallowed:
            # Discord's answer when the portal has not enabled a privileged intent; not a protocol error.
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return

        session = Session(uuid.uuid4().hex, (shard[0], shard[1]), intents, connection=conn)
        conn.session = session
        self.sessions[session.id] = session
        self.identifies.append(session)
        guilds = [g for g in self.world.guilds.values() if session.receives("GUILD_CREATE", g.id)]
        ready = {
            "v": 10,
            "user": {**self.world.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_url,
            "shard": list(session.shard),
            "application": {"id": str(self.world.application_id), "flags": 1 << 19},  # message content
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
        }
        await conn.send(session.record("READY", ready))
        for guild in guilds:
            await conn.send(session.record("GUILD_CREATE", guild.payload(self.world.guild_channels(guild))))
        self._changed()

    async def _resume(self, conn: Connection, data: dict) -> None:
        session = self.sessions.get(data.get("session_id", ""))
        seq = data.get("seq")
        oldest = session.buffer[0]["s"] if session and session.buffer else 1
        usable = (
            session is not None
            and not session.ended
            and data.get("token") == self.token
            and isinstance(seq, int)
            and seq + 1 >= oldest  # the buffer still holds everything after seq
        )
        if not usable:
            self.resumes.append(ResumeRecord(str(data.get("session_id")), seq, False, 0, conn.path))
            # d=false: not resumable; discord.py closes and IDENTIFYs from scratch.
            await conn.send({"op": Op.INVALID_SESSION, "d": False})
            self._changed()
            return
        assert session is not None and isinstance(seq, int)
        async with conn.lock:
            # Attach under the connection's lock: a dispatch racing with us queues behind the replay.
            old = session.connection
            session.connection, conn.session = conn, session
            missed = [p for p in session.buffer if p["s"] > seq]
            resumed = session.record("RESUMED", {})
        if old is not None and old is not conn:
            await old.ws.close(code=4009, message=b"Session resumed elsewhere.")
        self.resumes.append(ResumeRecord(session.id, seq, True, len(missed), conn.path))
        for payload in [*missed, resumed]:
            await conn.send(payload)
        self._changed()

    async def _send_members_chunk(self, session: Session, data: dict) -> None:
        guild = self.world.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        wanted = {int(u) for u in data.get("user_ids") or []}
        query = (data.get("query") or "").lower()

        def asked_for(member: Member) -> bool:
            return member.user.id in wanted if wanted else member.user.name.lower().startswith(query)

        members = [m.payload() for m in guild.members.values() if asked_for(m)]
        chunk = {"guild_id": str(guild.id), "members": members, "chunk_index": 0, "chunk_count": 1}
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._send(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def _close(self, conn: Connection, code: int, reason: str) -> None:
        self.protocol_errors.append(f"gateway closed {code}: {reason}")
        await conn.ws.close(code=code, message=reason.encode()[:120])

    async def _refuse(self, ws: web.WebSocketResponse, code: int, reason: str) -> web.WebSocketResponse:
        self.protocol_errors.append(f"gateway refused connection {code}: {reason}")
        await ws.close(code=code, message=reason.encode()[:120])
        return ws

    # --- dispatching ----------------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict) -> int:
        """Sends an event to every session that should see it; returns how many sessions got it."""
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        reached = 0
        for session in list(self.sessions.values()):
            if session.receives(event, guild_id):
                await self._send(
                    session, event, without_content(event, data, session.intents, self.world.bot.id)
                )
                reached += 1
        return reached

    async def _send(self, session: Session, event: str, data: dict) -> None:
        payload = session.record(event, data)
        if session.connection is not None:
            await session.connection.send(payload)

    # --- breaking things on purpose -------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Cuts every gateway connection like a network failure would (no close frame); returns how many.

        Sessions are detached first, synchronously, so anything dispatched from now on is buffered for
        the RESUME even if the client reconnects very quickly.
        """
        dropped = list(self.connections)
        for conn in dropped:
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            if conn.request.transport is not None:
                conn.request.transport.abort()
        return len(dropped)

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """Drops every connection and holds reconnections (before HELLO) until the block ends."""
        self._open.clear()
        self.drop_connections()
        try:
            yield
        finally:
            self._open.set()

    async def request_reconnect(self) -> None:
        """Sends op 7 RECONNECT to every live connection, as Discord does before moving a session."""
        for conn in list(self.connections):
            await conn.send({"op": Op.RECONNECT, "d": None})

    def invalidate_sessions(self) -> None:
        """Forgets every session, so the next RESUME gets INVALID_SESSION and the client IDENTIFYs again."""
        for session in self.sessions.values():
            session.ended = True

    async def close(self) -> None:
        self._open.set()
        for conn in list(self.connections):
            await conn.ws.close(code=1001, message=b"Server shutting down.")
