"""A small Tk app for the injection tests: one window filling the screen that prints every key
and button event it receives as a JSON line on stdout, with where it happened on the screen and
when (``time.monotonic()``, comparable across processes on Linux).

It prints ``{"ready": ...}`` once the window is mapped and has the keyboard focus.
Run: ``DISPLAY=:N python input_logger.py [WIDTHxHEIGHT]``.
"""

from __future__ import annotations

import json
import sys
import time
import tkinter as tk


def main() -> None:
    size = sys.argv[1] if len(sys.argv) > 1 else "1280x720"
    root = tk.Tk()
    root.geometry(f"{size}+0+0")
    root.configure(background="#204060")

    def log(kind: str, event: tk.Event) -> None:  # type: ignore[type-arg]
        line = {
            "ev": kind,
            "t": time.monotonic(),
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
