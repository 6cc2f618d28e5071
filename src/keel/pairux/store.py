"""Rooms, participants and accounts in pairux's database: every write is one transaction that
applies the rules of :mod:`keel.pairux.rooms` to what the database holds at that moment."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from keel.core import db
from keel.core.clock import Clock
from keel.pairux import models, rooms, tokens
from keel.pairux.errors import RoomEnded, RoomNotFound
from keel.pairux.rooms import Participant, Role, Room, Status, Topology

_CODE_ATTEMPTS = 10
_R, _P, _A = models.rooms, models.participants, models.accounts


@dataclass(frozen=True)
class Account:
    id: str
    name: str


@dataclass(frozen=True)
class Admission:
    """A participant admitted to a room, with the token it alone holds (shown once)."""

    room: Room
    participant: Participant
    token: str


def _room(row: Any) -> Room:
    return Room(
        id=row.id,
        code=row.code,
        status=Status(row.status),
        topology=Topology(row.topology),
        host_id=row.host_id,
        created_at=row.created_at,
        ended_at=row.ended_at,
    )


def _participant(row: Any) -> Participant:
    return Participant(
        id=row.id,
        room_id=row.room_id,
        display_name=row.display_name,
        role=Role(row.role),
        account_id=row.account_id,
        joined_at=row.joined_at,
        left_at=row.left_at,
    )


def _new_id() -> str:
    return uuid.uuid4().hex


class RoomStore:
    def __init__(
        self, engine: AsyncEngine, keys: tokens.Keys, clock: Clock, capacity: rooms.Capacity
    ) -> None:
        self.engine = engine
        self.sessions = db.session_factory(engine)
        self.keys = keys
        self.clock = clock
        self.capacity = capacity

    # Accounts.
    async def create_account(self, name: str) -> tuple[Account, str]:
        """A new account and its key (shown once; only its keyed hash is stored)."""
        key = tokens.new_account_key()
        account = Account(_new_id(), name)
        async with db.transaction(self.sessions) as session:
            await session.execute(
                _A.insert().values(
                    id=account.id,
                    name=name,
                    key_hash=self.keys.hash_token(key),
                    created_at=self.clock.now(),
                )
            )
        return account, key

    async def account_by_key(self, key: str) -> Account | None:
        if not tokens.well_formed(key, tokens.ACCOUNT_PREFIX):
            return None
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(_A.c.id, _A.c.name).where(_A.c.key_hash == self.keys.hash_token(key))
                )
            ).first()
        return Account(row.id, row.name) if row else None

    # Rooms.
    async def create_room(self, display_name: str, account_id: str | None) -> Admission:
        """A live room with a fresh join code and its creator as host."""
        now = self.clock.now()
        room_id, host_id = _new_id(), _new_id()
        token = tokens.new_participant_token()
        for attempt in range(_CODE_ATTEMPTS):
            code = tokens.new_code()
            try:
                async with db.transaction(self.sessions) as session:
                    await session.execute(
                        _R.insert().values(
                            id=room_id,
                            code=code,
                            status=Status.LIVE.value,
                            topology=Topology.P2P.value,
                            host_id=host_id,
                            created_at=now,
                        )
                    )
                    await self._insert_participant(
                        session, host_id, room_id, display_name, Role.HOST, account_id, token
                    )
                break
            except IntegrityError:  # the code is taken by a live room: draw again
                if attempt == _CODE_ATTEMPTS - 1:
                    raise
        room = Room(room_id, code, Status.LIVE, Topology.P2P, host_id, now)
        host = Participant(host_id, room_id, display_name, Role.HOST, account_id, now)
        return Admission(room, host, token)

    async def _insert_participant(
        self,
        session: AsyncSession,
        participant_id: str,
        room_id: str,
        display_name: str,
        role: Role,
        account_id: str | None,
        token: str,
    ) -> None:
        await session.execute(
            _P.insert().values(
                id=participant_id,
                room_id=room_id,
                account_id=account_id,
                display_name=display_name,
                role=role.value,
                token_hash=self.keys.hash_token(token),
                joined_at=self.clock.now(),
            )
        )

    async def room(self, room_id: str) -> Room | None:
        async with self.sessions() as session:
            row = (await session.execute(select(_R).where(_R.c.id == room_id))).first()
        return _room(row) if row else None

    async def live_room_by_code(self, code: str) -> Room | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(_R).where(_R.c.code == code, _R.c.status == Status.LIVE.value)
                )
            ).first()
        return _room(row) if row else None

    async def live_rooms(self) -> list[Room]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(_R).where(_R.c.status == Status.LIVE.value).order_by(_R.c.created_at)
            )
        return [_room(row) for row in rows]

    async def join(self, room_id: str, display_name: str, account_id: str | None) -> Admission:
        """Admit a viewer to a live room, moving it to the SFU when its capacity says so;
        RoomEnded, RoomNotFound or RoomFull otherwise."""
        token = tokens.new_participant_token()
        participant_id = _new_id()
        async with db.transaction(self.sessions) as session:
            # Locked on PostgreSQL so that two joins cannot both take the last place.
            row = (
                await session.execute(select(_R).where(_R.c.id == room_id).with_for_update())
            ).first()
            if row is None:
                raise RoomNotFound()
            room = _room(row)
            if room.status is not Status.LIVE:
                raise RoomEnded()
            viewers = await self._count_viewers(session, room_id)
            topology = rooms.admit(room.topology, viewers, self.capacity)
            if topology is not room.topology:
                await session.execute(
                    update(_R).where(_R.c.id == room_id).values(topology=topology.value)
                )
                room = Room(**{**room.__dict__, "topology": topology})
            await self._insert_participant(
                session, participant_id, room_id, display_name, Role.VIEWER, account_id, token
            )
        joined = Participant(
            participant_id, room_id, display_name, Role.VIEWER, account_id, self.clock.now()
        )
        return Admission(room, joined, token)

    async def _count_viewers(self, session: AsyncSession, room_id: str) -> int:
        count = await session.execute(
            select(func.count())
            .select_from(_P)
            .where(_P.c.room_id == room_id, _P.c.left_at.is_(None), _P.c.role != Role.HOST.value)
        )
        return int(count.scalar_one())

    async def regenerate_code(self, room_id: str) -> str:
        """A fresh join code for a live room; the old one stops working at once."""
        for attempt in range(_CODE_ATTEMPTS):
            code = tokens.new_code()
            try:
                async with db.transaction(self.sessions) as session:
                    result = await session.execute(
                        update(_R)
                        .where(_R.c.id == room_id, _R.c.status == Status.LIVE.value)
                        .values(code=code)
                    )
                    if result.rowcount == 0:  # type: ignore[attr-defined]
                        raise RoomEnded()
                return code
            except IntegrityError:
                if attempt == _CODE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def end_room(self, room_id: str) -> bool:
        """End a live room: its code is freed, every participant has left. False when it had
        already ended."""
        now = self.clock.now()
        async with db.transaction(self.sessions) as session:
            result = await session.execute(
                update(_R)
                .where(_R.c.id == room_id, _R.c.status == Status.LIVE.value)
                .values(status=Status.ENDED.value, code=None, ended_at=now)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                return False
            await session.execute(
                update(_P)
                .where(_P.c.room_id == room_id, _P.c.left_at.is_(None))
                .values(left_at=now)
            )
        return True

    # Participants.
    async def by_token(self, token: str) -> tuple[Participant, Room] | None:
        """The participant holding ``token`` and its room, while it has not left."""
        if not tokens.well_formed(token, tokens.PARTICIPANT_PREFIX):
            return None
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(_P).where(
                        _P.c.token_hash == self.keys.hash_token(token), _P.c.left_at.is_(None)
                    )
                )
            ).first()
            if row is None:
                return None
            room = (await session.execute(select(_R).where(_R.c.id == row.room_id))).first()
        assert room is not None
        return _participant(row), _room(room)

    async def present(self, room_id: str) -> list[Participant]:
        """Participants who have not left, in the order they joined."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(_P)
                .where(_P.c.room_id == room_id, _P.c.left_at.is_(None))
                .order_by(_P.c.joined_at, _P.c.id)
            )
        return [_participant(row) for row in rows]

    async def set_role(self, room_id: str, participant_id: str, role: Role) -> None:
        """Record a controller/viewer role the host reported (never the host role)."""
        assert role is not Role.HOST
        async with db.transaction(self.sessions) as session:
            await session.execute(
                update(_P)
                .where(
                    _P.c.id == participant_id,
                    _P.c.room_id == room_id,
                    _P.c.role != Role.HOST.value,
                )
                .values(role=role.value)
            )

    async def transfer_host(self, room_id: str, new_host_id: str) -> Sequence[str]:
        """Make ``new_host_id`` the host; the old host becomes a viewer and every controller
        loses control (their grants were the old host's). Returns the demoted ids."""
        async with db.transaction(self.sessions) as session:
            demoted = (
                (
                    await session.execute(
                        select(_P.c.id).where(
                            _P.c.room_id == room_id,
                            _P.c.left_at.is_(None),
                            _P.c.role != Role.VIEWER.value,
                            _P.c.id != new_host_id,
                        )
                    )
                )
                .scalars()
                .all()
            )
            await session.execute(
                update(_P)
                .where(_P.c.room_id == room_id, _P.c.role != Role.VIEWER.value)
                .values(role=Role.VIEWER.value)
            )
            await session.execute(
                update(_P).where(_P.c.id == new_host_id).values(role=Role.HOST.value)
            )
            await session.execute(update(_R).where(_R.c.id == room_id).values(host_id=new_host_id))
        return list(demoted)

    async def leave(self, participant_id: str) -> None:
        """The participant has left: its token no longer opens anything."""
        async with db.transaction(self.sessions) as session:
            await session.execute(
                update(_P)
                .where(_P.c.id == participant_id, _P.c.left_at.is_(None))
                .values(left_at=self.clock.now())
            )
