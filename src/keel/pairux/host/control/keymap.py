"""DOM keys to X keysyms.

The viewer sends ``code`` (the physical key, named after its place on a US keyboard) and
``key`` (what it typed there). We map ``code`` first: the host's own layout then turns the
physical key into a character exactly as it would for a local keyboard, and Shift, AltGr and
dead keys behave. Only a key with no usable ``code`` falls back to ``key`` (a single character
becomes its keysym; a named key like ``Enter`` is looked up by name).
"""

from __future__ import annotations

from typing import Final

# Keysym values from X11/keysymdef.h (they are the protocol, not anyone's code).
_NAMED: Final[dict[str, int]] = {
    "Backspace": 0xFF08,
    "Tab": 0xFF09,
    "Enter": 0xFF0D,
    "Pause": 0xFF13,
    "ScrollLock": 0xFF14,
    "Escape": 0xFF1B,
    "Home": 0xFF50,
    "ArrowLeft": 0xFF51,
    "ArrowUp": 0xFF52,
    "ArrowRight": 0xFF53,
    "ArrowDown": 0xFF54,
    "PageUp": 0xFF55,
    "PageDown": 0xFF56,
    "End": 0xFF57,
    "PrintScreen": 0xFF61,
    "Insert": 0xFF63,
    "ContextMenu": 0xFF67,
    "NumLock": 0xFF7F,
    "NumpadEnter": 0xFF8D,
    "NumpadMultiply": 0xFFAA,
    "NumpadAdd": 0xFFAB,
    "NumpadSubtract": 0xFFAD,
    "NumpadDecimal": 0xFFAE,
    "NumpadDivide": 0xFFAF,
    "ShiftLeft": 0xFFE1,
    "ShiftRight": 0xFFE2,
    "ControlLeft": 0xFFE3,
    "ControlRight": 0xFFE4,
    "CapsLock": 0xFFE5,
    "AltLeft": 0xFFE9,
    "AltRight": 0xFFEA,
    "MetaLeft": 0xFFEB,  # Super_L: what the Windows/Cmd key is on an X11 desktop
    "MetaRight": 0xFFEC,
    "Delete": 0xFFFF,
    "Space": 0x0020,
    "Quote": 0x0027,
    "Comma": 0x002C,
    "Minus": 0x002D,
    "Period": 0x002E,
    "Slash": 0x002F,
    "Semicolon": 0x003B,
    "Equal": 0x003D,
    "BracketLeft": 0x005B,
    "Backslash": 0x005C,
    "BracketRight": 0x005D,
    "Backquote": 0x0060,
    "IntlBackslash": 0x003C,
}
_KEY_NAMES: Final[dict[str, int]] = {
    "Backspace": 0xFF08,
    "Tab": 0xFF09,
    "Enter": 0xFF0D,
    "Escape": 0xFF1B,
    "Delete": 0xFFFF,
    "Home": 0xFF50,
    "End": 0xFF57,
    "PageUp": 0xFF55,
    "PageDown": 0xFF56,
    "ArrowLeft": 0xFF51,
    "ArrowUp": 0xFF52,
    "ArrowRight": 0xFF53,
    "ArrowDown": 0xFF54,
    "Insert": 0xFF63,
    "Shift": 0xFFE1,
    "Control": 0xFFE3,
    "Alt": 0xFFE9,
    "Meta": 0xFFEB,
    "CapsLock": 0xFFE5,
}

SHIFT: Final = 0xFFE1
CONTROL: Final = 0xFFE3
ALT: Final = 0xFFE9
SUPER: Final = 0xFFEB
MODIFIER_KEYSYMS: Final[dict[int, str]] = {
    0xFFE1: "shift",
    0xFFE2: "shift",
    0xFFE3: "ctrl",
    0xFFE4: "ctrl",
    0xFFE9: "alt",
    0xFFEA: "alt",
    0xFFEB: "meta",
    0xFFEC: "meta",
}
"""Which modifier each modifier key's keysym is (for blocked combinations and ``accel``)."""


def keysym_for(code: str, key: str) -> int | None:
    """The X keysym to press for a DOM ``code``/``key`` pair, or None when we know neither."""
    by_code = _code_keysym(code)
    if by_code is not None:
        return by_code
    if key in _KEY_NAMES:
        return _KEY_NAMES[key]
    if len(key) == 1:
        return _char_keysym(key)
    return None


def _code_keysym(code: str) -> int | None:
    if code in _NAMED:
        return _NAMED[code]
    if len(code) == 4 and code.startswith("Key") and "A" <= code[3] <= "Z":
        return ord(code[3].lower())
    if len(code) == 6 and code.startswith("Digit") and code[5].isdigit():
        return ord(code[5])
    if len(code) == 7 and code.startswith("Numpad") and code[6].isdigit():
        return 0xFFB0 + int(code[6])  # KP_0..KP_9
    if code.startswith("F") and code[1:].isdigit() and 1 <= int(code[1:]) <= 24:
        return 0xFFBE + int(code[1:]) - 1  # F1..F24
    return None


def _char_keysym(char: str) -> int | None:
    point = ord(char)
    if point < 0x20 or 0x7F <= point < 0xA0 or 0xD800 <= point < 0xE000:
        return None
    if point <= 0xFF:
        return point  # Latin-1 keysyms equal their code points
    return 0x01000000 | point  # the Unicode keysym range
