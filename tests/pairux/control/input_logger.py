"""A small Tk app for the injection tests: one window filling the screen that prints every key
and button event it receives as a JSON line on stdout, with where it happened on the screen and
when (``t``: ``time.monotonic()``, comparable across processes on Linux; ``wall``:
``time.time()``, comparable with a browser's ``performance.timeOrigin + performance.now()``).

It prints ``{"ready": ...}`` once the window is mapped and has the keyboard focus.
Run: ``DISPLAY=:N python input_logger.py [WIDTHxHEIGHT] [--patch]``; ``--patch`` adds an orange
block (``PATCH``: left, top, width, height) that a viewer can find in the picture.
"""

from __future__ import annotations

import json
import sys
import time
import tkinter as tk

PATCH = (200, 150, 240, 160)
PATCH_COLOUR = "#e05a1e"


def main() -> None:
    size = next((a for a in sys.argv[1:] if "x" in a), "1280x720")
    root = tk.Tk()
    root.geometry(f"{size}+0+0")
    root.configure(background="#204060")
    if "--patch" in sys.argv:
        left, top, width, height = PATCH
        block = tk.Frame(root, background=PATCH_COLOUR, width=width, height=height)
        block.place(x=left, y=top)

    def log(kind: str, event: tk.Event) -> None:  # type: ignore[type-arg]
        line = {
            "ev": kind,
            "t": time.monotonic(),
            "wall": time.time(),
            "x": event.x_root,
            "y": event.y_root,
            "keysym": getattr(event, "keysym", "??"),
            "char": getattr(event, "char", ""),
            "num": getattr(event, "num", "??"),
        }
        print(json.dumps(line), flush=True)

    for sequence, kind in (
        ("<KeyPress>", "key_down"),
        ("<KeyRelease>", "key_up"),
        ("<ButtonPress>", "button_down"),
        ("<ButtonRelease>", "button_up"),
    ):
        root.bind_all(sequence, lambda event, kind=kind: log(kind, event))
    root.wait_visibility()
    root.focus_force()
    root.update()
    print(
        json.dumps(
            {
                "ready": True,
                "x": root.winfo_rootx(),
                "y": root.winfo_rooty(),
                "width": root.winfo_width(),
                "height": root.winfo_height(),
            }
        ),
        flush=True,
    )
    root.mainloop()


if __name__ == "__main__":
    main()
