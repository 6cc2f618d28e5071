"""Several controllers and the host on one screen: whose input is injected, where, and when.

Every input event passes :meth:`Arbiter.submit`, the only path to the injector. In order:

1. **Grant**: the sender holds a grant at this instant (:mod:`.grants`), else dropped.
2. **Sequence**: strictly greater than the sender's last, else dropped as stale or replayed.
3. **Rate**: at most ``rate_per_s`` events a second per controller (token bucket).
4. **Host priority**: while the host's own hands are on the keyboard or mouse, and for
   ``host_quiet`` after, remote presses are dropped; when the host starts, everything remote
   controllers hold is released, so the host never fights a held Shift or a drag.
5. **Keyboard focus**: the controller that typed within ``typing_lock`` (or holds a key) owns
   the keyboard; another controller's keys are *dropped*, and it may take the keyboard only
   after pausing ``typing_lock`` since its last dropped key. So a word is never split: the
   loser's half-typed word does not land, and its tail does not land when the lock frees.
   (Queueing instead would type the loser's keys seconds later, into whatever has focus then,
   unseen; ADR 0027.)
6. **Pointer**: each controller has its own virtual cursor, moved by its ``move`` events and
   drawn by every viewer. The real pointer moves only to inject a press, a drag or a scroll,
   then returns where it was. While one controller holds a button, others' presses wait
   their turn (dropped).
7. **Blocked combinations** (Ctrl+Alt+Del, Meta+L, Meta+Alt+Esc, Ctrl+Shift+Meta+Q) never reach
   the display, judged on the modifiers the message claims and the ones the sender holds.
8. **Watchdog**: a key or button held ``hold_limit`` (5 s) without activity is released
   (:meth:`Arbiter.tick`); releases of what a controller holds always pass.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from keel.core.clock import Clock
from keel.pairux.host.control import keymap, messages
from keel.pairux.host.control.grants import GrantAuthority, GrantEvent
from keel.pairux.host.control.injector import Injector, MouseButton, ScrollAccumulator

__all__ = ["BLOCKED_COMBINATIONS", "Arbiter", "CaptureRect", "Outcome", "ParticipantCursor"]

Outcome = Literal[
    "injected",
    "moved",
    "accumulated",
    "not_granted",
    "stale",
    "rate_limited",
    "host_active",
    "keyboard_busy",
    "pointer_busy",
    "blocked",
    "unknown_key",
    "not_held",
]
"""What became of one input event; everything but the first three means nothing was injected."""

_DELETE = frozenset({0xFFFF, 0xFF9F, 0xFFAE})  # Delete, KP_Delete, KP_Decimal (same key)
BLOCKED_COMBINATIONS: Final[tuple[tuple[frozenset[str], frozenset[int]], ...]] = (
    (frozenset({"ctrl", "alt"}), _DELETE),
    (frozenset({"meta"}), frozenset({ord("l"), ord("L")})),
    (frozenset({"meta", "alt"}), frozenset({0xFF1B})),
    (frozenset({"ctrl", "shift", "meta"}), frozenset({ord("q"), ord("Q")})),
)
"""(modifiers, keysyms): the key with at least those modifiers is never injected."""

_MODIFIER_KEYSYM: Final[dict[str, int]] = {
    "ctrl": keymap.CONTROL,
    "alt": keymap.ALT,
    "shift": keymap.SHIFT,
    "meta": keymap.SUPER,
}


@dataclass(frozen=True, slots=True)
class CaptureRect:
    """The shared surface in X screen pixels: a monitor's rectangle (``left``/``top`` are its
    offset on a multi-monitor screen) or the whole screen. The viewer letterboxes; 0-1 here
    is this rectangle's edge to edge."""

    left: int
    top: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError("a capture rectangle needs a positive size")

    def to_pixels(self, x: float, y: float) -> tuple[int, int]:
        """Screen pixel for normalised (x, y); 1.0 is the last pixel, not one past it."""
        px = min(self.width - 1, max(0, int(x * self.width)))
        py = min(self.height - 1, max(0, int(y * self.height)))
        return self.left + px, self.top + py


@dataclass(frozen=True, slots=True)
class ParticipantCursor:
    participant_id: str
    x: float
    y: float


@dataclass(slots=True)
class _HeldKey:
    keycode: int
    keysym: int
    since: datetime
    synthesized: tuple[int, ...] = ()  # modifier keycodes pressed for this key only


@dataclass(slots=True)
class _Lane:
    """One controller's input state."""

    tokens: float
    refilled_at: datetime
    last_sequence: int = -1
    keys: dict[str, _HeldKey] = field(default_factory=dict)
    buttons: dict[MouseButton, datetime] = field(default_factory=dict)
    last_key_at: datetime | None = None
    keyboard_blocked_until: datetime | None = None
    scroll: ScrollAccumulator = field(default_factory=ScrollAccumulator)
    injected: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


class Arbiter:
    """The gate between granted controllers and the injector (see the module docstring).

    Thread-safe: the data channels, the host-input listener and the host's UI may call it from
    different threads; a revoke returns only after any injection in progress has finished.
    """

    def __init__(
        self,
        *,
        grants: GrantAuthority,
        injector: Injector,
        clock: Clock,
        rect: CaptureRect,
        typing_lock: timedelta = timedelta(seconds=1),
        host_quiet: timedelta = timedelta(milliseconds=500),
        rate_per_s: int = 1000,
        hold_limit: timedelta = timedelta(seconds=5),
        restore_pointer: bool = True,
        on_grant_end: Callable[[str, int], None] | None = None,
    ) -> None:
        self.grants = grants
        self.clock = clock
        self.rect = rect
        self.typing_lock = typing_lock
        self.host_quiet = host_quiet
        self.rate_per_s = rate_per_s
        self.hold_limit = hold_limit
        self.restore_pointer = restore_pointer
        self._injector = injector
        self._enabled = False
        self._on_grant_end = on_grant_end
        self._lock = threading.RLock()
        self._lanes: dict[str, _Lane] = {}
        self._cursors: dict[str, ParticipantCursor] = {}
        self._keyboard_owner: str | None = None
        self._host_until: datetime | None = None
        self._borrowed_from: tuple[int, int] | None = None
        grants.subscribe(self._on_grant_event)

    def enable(self) -> bool:
        """Open the injector; False when it cannot inject (then every event is dropped)."""
        with self._lock:
            self._enabled = self._injector.enable()
            return self._enabled

    def close(self) -> None:
        with self._lock:
            self.release_all()
            self._enabled = False
            self._injector.close()

    # -- input -----------------------------------------------------------------------------

    def submit(self, participant_id: str, message: messages.InputMessage) -> Outcome:
        """Inject one input message from a participant if every rule allows it."""
        with self._lock:
            now = self.clock.now()
            if not self._enabled or not self.grants.is_granted(participant_id):
                return self._drop(None, "not_granted")
            lane = self._lane(participant_id, now)
            if message.sequence <= lane.last_sequence:
                return self._drop(lane, "stale")
            lane.last_sequence = message.sequence
            if not self._take_token(lane, now):
                return self._drop(lane, "rate_limited")
            event = message.event
            if isinstance(event, messages.KeyEvent):
                outcome = self._key(participant_id, lane, event, now)
            elif isinstance(event, messages.MouseMove):
                outcome = self._move(participant_id, lane, event.x, event.y, now)
            elif isinstance(event, messages.MouseButtonEvent):
                outcome = self._button(participant_id, lane, event, now)
            else:
                outcome = self._scroll(participant_id, lane, event, now)
            if outcome == "injected":
                lane.injected += 1
            elif outcome not in ("moved", "accumulated"):
                lane.dropped[outcome] += 1
            return outcome

    def set_cursor(self, participant_id: str, x: float, y: float, visible: bool) -> None:
        """A participant's pointer over the video (any viewer; drawn, never injected)."""
        with self._lock:
            if visible:
                self._cursors[participant_id] = ParticipantCursor(participant_id, x, y)
            else:
                self._cursors.pop(participant_id, None)

    def cursors(self) -> list[ParticipantCursor]:
        with self._lock:
            return list(self._cursors.values())

    def host_input(self) -> None:
        """The host's own keyboard or mouse moved: remote input pauses for ``host_quiet``
        and everything remote controllers hold is released now."""
        with self._lock:
            self._host_until = self.clock.now() + self.host_quiet
            self.release_all()

    def host_active(self) -> bool:
        with self._lock:
            return self._host_until is not None and self.clock.now() < self._host_until

    def emergency_revoke(self) -> None:
        """The hotkey: every grant ends and every key and button held remotely is released."""
        with self._lock:
            self.grants.emergency_revoke()
            self.release_all()

    def tick(self) -> None:
        """Lapse prompts and grants (:meth:`GrantAuthority.tick`) and release whatever has
        been held past ``hold_limit``. Call it every 100 ms or so."""
        with self._lock:
            self.grants.tick()
            now = self.clock.now()
            for participant_id, lane in self._lanes.items():
                for code, held in list(lane.keys.items()):
                    if now - held.since >= self.hold_limit:
                        self._release_key(lane, code)
                for button, since in list(lane.buttons.items()):
                    if now - since >= self.hold_limit:
                        self._release_button(participant_id, lane, button)

    def forget(self, participant_id: str) -> None:
        """The participant's channel closed: release what it held, drop its state."""
        with self._lock:
            lane = self._lanes.get(participant_id)
            if lane is not None:
                self._release_lane(participant_id, lane)
                del self._lanes[participant_id]
            self._cursors.pop(participant_id, None)

    def release_all(self) -> None:
        """Release every key and button any remote controller holds."""
        with self._lock:
            for participant_id, lane in self._lanes.items():
                self._release_lane(participant_id, lane)

    def injected_counts(self) -> dict[str, int]:
        with self._lock:
            return {pid: lane.injected for pid, lane in self._lanes.items()}

    def dropped_counts(self, participant_id: str) -> Counter[str]:
        with self._lock:
            lane = self._lanes.get(participant_id)
            return Counter(lane.dropped) if lane else Counter()

    def holding(self) -> dict[str, tuple[list[str], list[MouseButton]]]:
        """What each controller holds now: (key codes, buttons)."""
        with self._lock:
            return {pid: (list(lane.keys), list(lane.buttons)) for pid, lane in self._lanes.items()}

    # -- keyboard --------------------------------------------------------------------------

    def _key(self, pid: str, lane: _Lane, event: messages.KeyEvent, now: datetime) -> Outcome:
        ident = event.code or f"key:{event.key}"
        if event.action == "up":
            if ident not in lane.keys:
                return self._keyboard_refusal(pid, lane, now) or "not_held"
            self._release_key(lane, ident)
            lane.last_key_at = now
            return "injected"
        if self._host_is_active(now):
            return "host_active"
        refusal = self._keyboard_refusal(pid, lane, now)
        if refusal is not None:
            return refusal
        mods = event.modifiers
        mac_accel = mods.accel and not mods.ctrl  # Cmd on a Mac viewer: Ctrl on X11
        keysym = keymap.keysym_for(event.code, event.key)
        if keysym is None:
            return "unknown_key"
        if mac_accel and keymap.MODIFIER_KEYSYMS.get(keysym) == "meta":
            keysym = keymap.CONTROL if event.code != "MetaRight" else keymap.CONTROL + 1
        wanted = {
            name
            for name, on in (
                ("ctrl", mods.ctrl or mods.accel),
                ("alt", mods.alt),
                ("shift", mods.shift),
                ("meta", mods.meta and not mac_accel),
            )
            if on
        }
        held_mods = {
            name for k in lane.keys.values() if (name := keymap.MODIFIER_KEYSYMS.get(k.keysym))
        }
        own = keymap.MODIFIER_KEYSYMS.get(keysym)
        if own is None and _blocked(wanted | held_mods, keysym):
            return "blocked"
        keycode = self._injector.keycode(keysym)
        if keycode is None:
            return "unknown_key"
        previous = lane.keys.get(ident)
        synthesized: list[int] = []
        if previous is not None:  # auto-repeat: press again; its modifiers are already down
            synthesized = list(previous.synthesized)
        elif own is None:  # modifiers the message claims but the sender never pressed
            for name in sorted(wanted - held_mods):
                mod_code = self._injector.keycode(_MODIFIER_KEYSYM[name])
                if mod_code is not None:
                    self._injector.key(mod_code, True)
                    synthesized.append(mod_code)
        self._injector.key(keycode, True)
        lane.keys[ident] = _HeldKey(keycode, keysym, now, tuple(synthesized))
        lane.last_key_at = now
        lane.keyboard_blocked_until = None
        self._keyboard_owner = pid
        return "injected"

    def _keyboard_refusal(self, pid: str, lane: _Lane, now: datetime) -> Outcome | None:
        owner = self._current_keyboard_owner(now)
        busy = owner is not None and owner != pid
        waiting = lane.keyboard_blocked_until is not None and now < lane.keyboard_blocked_until
        if busy or waiting:
            lane.keyboard_blocked_until = now + self.typing_lock
            return "keyboard_busy"
        return None

    def _current_keyboard_owner(self, now: datetime) -> str | None:
        owner = self._keyboard_owner
        if owner is None:
            return None
        lane = self._lanes.get(owner)
        if lane is None or not self.grants.is_granted(owner):
            self._keyboard_owner = None
            return None
        if lane.keys or (
            lane.last_key_at is not None and now < lane.last_key_at + self.typing_lock
        ):
            return owner
        self._keyboard_owner = None
        return None

    def _release_key(self, lane: _Lane, ident: str) -> None:
        held = lane.keys.pop(ident)
        self._injector.key(held.keycode, False)
        for mod_code in reversed(held.synthesized):
            self._injector.key(mod_code, False)

    # -- pointer ---------------------------------------------------------------------------

    def _move(self, pid: str, lane: _Lane, x: float, y: float, now: datetime) -> Outcome:
        self._cursors[pid] = ParticipantCursor(pid, x, y)
        if lane.buttons:  # a drag: the real pointer follows its owner, and it is not stuck
            for button in lane.buttons:
                lane.buttons[button] = now
            self._injector.move(*self.rect.to_pixels(x, y))
            return "injected"
        return "moved"

    def _button(
        self, pid: str, lane: _Lane, event: messages.MouseButtonEvent, now: datetime
    ) -> Outcome:
        self._cursors[pid] = ParticipantCursor(pid, event.x, event.y)
        if event.action == "up":
            if event.button not in lane.buttons:
                return "not_held"
            self._injector.move(*self.rect.to_pixels(event.x, event.y))
            self._release_button(pid, lane, event.button)
            return "injected"
        if self._host_is_active(now):
            return "host_active"
        if self._pointer_owner() not in (None, pid):
            return "pointer_busy"
        self._borrow_pointer()
        self._injector.move(*self.rect.to_pixels(event.x, event.y))
        self._injector.button(event.button, True)
        lane.buttons[event.button] = now
        return "injected"

    def _scroll(self, pid: str, lane: _Lane, event: messages.MouseScroll, now: datetime) -> Outcome:
        if self._host_is_active(now):
            return "host_active"
        if self._pointer_owner() not in (None, pid):
            return "pointer_busy"
        if event.x is not None and event.y is not None:
            self._cursors[pid] = ParticipantCursor(pid, event.x, event.y)
        cursor = self._cursors.get(pid)
        dx, dy = lane.scroll.add(event.delta_x, event.delta_y, event.delta_mode)
        if dx == 0 and dy == 0:
            return "accumulated"
        x, y = (cursor.x, cursor.y) if cursor else (0.5, 0.5)
        self._borrow_pointer()
        self._injector.move(*self.rect.to_pixels(x, y))
        self._injector.scroll(dx, dy)
        if not lane.buttons:
            self._return_pointer()
        return "injected"

    def _pointer_owner(self) -> str | None:
        for pid, lane in self._lanes.items():
            if lane.buttons:
                return pid
        return None

    def _release_button(self, pid: str, lane: _Lane, button: MouseButton) -> None:
        del lane.buttons[button]
        self._injector.button(button, False)
        if self._pointer_owner() is None:
            self._return_pointer()

    def _borrow_pointer(self) -> None:
        if self.restore_pointer and self._borrowed_from is None and self._pointer_owner() is None:
            self._borrowed_from = self._injector.pointer()

    def _return_pointer(self) -> None:
        if self._borrowed_from is not None:
            self._injector.move(*self._borrowed_from)
            self._borrowed_from = None

    # -- plumbing --------------------------------------------------------------------------

    def _release_lane(self, pid: str, lane: _Lane) -> None:
        for ident in reversed(list(lane.keys)):  # last pressed first: modifiers go last
            self._release_key(lane, ident)
        for button in list(lane.buttons):
            self._release_button(pid, lane, button)
        if self._keyboard_owner == pid:
            self._keyboard_owner = None

    def _on_grant_event(self, event: GrantEvent) -> None:
        if event.kind not in ("revoked", "released"):
            return
        with self._lock:
            lane = self._lanes.get(event.participant_id)
            if lane is None:
                return
            self._release_lane(event.participant_id, lane)
            if self._on_grant_end is not None:
                self._on_grant_end(event.participant_id, lane.injected)
            lane.injected = 0

    def _lane(self, pid: str, now: datetime) -> _Lane:
        lane = self._lanes.get(pid)
        if lane is None:
            lane = self._lanes[pid] = _Lane(tokens=float(self.rate_per_s), refilled_at=now)
        return lane

    def _take_token(self, lane: _Lane, now: datetime) -> bool:
        elapsed = max(0.0, (now - lane.refilled_at).total_seconds())
        lane.tokens = min(float(self.rate_per_s), lane.tokens + elapsed * self.rate_per_s)
        lane.refilled_at = now
        if lane.tokens < 1.0:
            return False
        lane.tokens -= 1.0
        return True

    def _host_is_active(self, now: datetime) -> bool:
        return self._host_until is not None and now < self._host_until

    @staticmethod
    def _drop(lane: _Lane | None, outcome: Outcome) -> Outcome:
        if lane is not None:
            lane.dropped[outcome] += 1
        return outcome


def _blocked(modifiers: Iterable[str], keysym: int) -> bool:
    held = frozenset(modifiers)
    return any(keysym in keys and needed <= held for needed, keys in BLOCKED_COMBINATIONS)
