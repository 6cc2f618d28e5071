"""Frame sources: the screen through mss, or a synthetic pattern that numbers its frames.

A source only grabs; pacing and timestamps belong to the pipeline, which calls ``grab`` from its
one worker thread (mss keeps an X connection that must stay on the thread that opened it).

The synthetic pattern is the tests' and the benchmark's oracle: a band of 32 black/white cells
across the top carries the frame number (16 bits, then their complement so a reader can tell a
clean read from a damaged one), four coloured quadrants below it give known pixel values, and a
dark square that moves with the frame number keeps inter frames honest. Positions are relative
to the frame width, so the pattern still reads after the ladder scales the frame down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import av
import mss
import mss.exception
import numpy as np
import numpy.typing as npt

COUNTER_BITS = 16
CELLS_PER_ROW = 40  # the band is 40 cells wide; the first 2 x COUNTER_BITS carry the number
QUADRANT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40),  # top left: red
    (40, 200, 60),  # top right: green
    (40, 60, 220),  # bottom left: blue
    (230, 210, 40),  # bottom right: yellow
)
_GREY = (128, 128, 128)
_SQUARE = (30, 30, 30)

RgbImage = npt.NDArray[np.uint8]


class FrameSource(Protocol):
    """Something the pipeline can grab frames from."""

    def grab(self, index: int) -> av.VideoFrame:
        """The current picture as a frame without timestamps; ``index`` counts grabs from 0.
        Raises ``CaptureError`` when the picture cannot be read."""
        ...

    def close(self) -> None:
        """Release the display connection or buffers; idempotent."""
        ...


class CaptureError(RuntimeError):
    """The source could not produce a frame (display gone, grab failed)."""

    code = "capture_failed"


@dataclass(frozen=True)
class SamplePoint:
    """Where a quadrant's colour is checked, relative to the frame (0-1)."""

    x: float
    y: float
    colour: tuple[int, int, int]


def _band_height_rel(width: int, height: int) -> float:
    """The counter band's height as a fraction of the frame height (one cell is square)."""
    return (width / CELLS_PER_ROW) / height


class SyntheticSource:
    """A deterministic test pattern numbered by the grab index (mod 2**16)."""

    def __init__(self, width: int = 1280, height: int = 720) -> None:
        if width < CELLS_PER_ROW * 4 or height < 90 or width % 2 or height % 2:
            raise ValueError("synthetic frames need an even size of at least 160x90")
        self.width = width
        self.height = height
        self._cell = width // CELLS_PER_ROW
        self._base = _base_image(width, height, self._cell)

    def grab(self, index: int) -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(self.image(index), format="rgb24")

    def image(self, index: int) -> RgbImage:
        """The RGB picture of frame ``index`` (also what a clean decode should look like)."""
        img = self._base.copy()
        cell = self._cell
        number = index % (1 << COUNTER_BITS)
        for bit in range(COUNTER_BITS):
            on = (number >> (COUNTER_BITS - 1 - bit)) & 1
            for pos, value in ((bit, on), (COUNTER_BITS + bit, 1 - on)):
                img[0:cell, pos * cell : (pos + 1) * cell] = 255 if value else 0
        size = cell * 3
        travel = self.width - size
        x = (index * cell // 2) % travel
        y = (self.height - size) // 2
        img[y : y + size, x : x + size] = _SQUARE
        return img

    def close(self) -> None:
        return None


def _base_image(width: int, height: int, cell: int) -> RgbImage:
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:, :] = _GREY
    top = cell
    mid_x, mid_y = width // 2, top + (height - top) // 2
    img[top:mid_y, :mid_x] = QUADRANT_COLOURS[0]
    img[top:mid_y, mid_x:] = QUADRANT_COLOURS[1]
    img[mid_y:, :mid_x] = QUADRANT_COLOURS[2]
    img[mid_y:, mid_x:] = QUADRANT_COLOURS[3]
    img[0:cell, :] = _GREY
    return img


def sample_points(width: int, height: int) -> list[SamplePoint]:
    """The quadrant centres of a pattern of this aspect, away from the moving square's path."""
    band = _band_height_rel(width, height)
    rows = (band + (1 - band) / 4, band + 3 * (1 - band) / 4)
    return [
        SamplePoint(0.25, rows[0], QUADRANT_COLOURS[0]),
        SamplePoint(0.75, rows[0], QUADRANT_COLOURS[1]),
        SamplePoint(0.25, rows[1], QUADRANT_COLOURS[2]),
        SamplePoint(0.75, rows[1], QUADRANT_COLOURS[3]),
    ]


def read_counter(img: RgbImage) -> int | None:
    """The frame number the pattern carries, or None when a bit and its complement disagree
    (not our pattern, or damaged beyond reading)."""
    height, width = img.shape[0], img.shape[1]
    cell_w = width / CELLS_PER_ROW
    y = int(cell_w / 2)
    half = max(1, int(cell_w / 4))
    bits: list[int] = []
    for pos in range(2 * COUNTER_BITS):
        x = int((pos + 0.5) * cell_w)
        patch = img[max(0, y - half) : y + half, x - half : x + half]
        bits.append(1 if float(patch.mean()) > 128 else 0)
    pairs = zip(bits[:COUNTER_BITS], bits[COUNTER_BITS:], strict=True)
    if height <= 0 or any(a == b for a, b in pairs):
        return None
    number = 0
    for bit in bits[:COUNTER_BITS]:
        number = (number << 1) | bit
    return number


def colour_error(img: RgbImage) -> int:
    """The largest channel difference between the quadrant samples and the colours sent."""
    height, width = img.shape[0], img.shape[1]
    worst = 0
    for point in sample_points(width, height):
        x, y = int(point.x * width), int(point.y * height)
        pixel = img[y, x].astype(int)
        worst = max(worst, *(abs(int(p) - c) for p, c in zip(pixel, point.colour, strict=True)))
    return worst


class ScreenSource:
    """An X display grabbed with mss (BGRA, straight into a frame without a colour copy)."""

    def __init__(self, display: str | None = None, monitor: int = 1) -> None:
        self.display = display
        self.monitor = monitor
        self._mss: mss.MSS | None = None

    def grab(self, index: int) -> av.VideoFrame:
        try:
            if self._mss is None:
                self._mss = mss.MSS(display=self.display, with_cursor=False)
            shot = self._mss.grab(self._mss.monitors[self.monitor])
        except (mss.exception.ScreenShotError, IndexError) as exc:
            raise CaptureError(f"cannot grab display {self.display!r}: {exc}") from exc
        pixels = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        # Odd sizes do not fit 4:2:0 chroma; drop the last row/column rather than pad.
        pixels = pixels[: shot.height & ~1, : shot.width & ~1]
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="bgra")

    def close(self) -> None:
        if self._mss is not None:
            self._mss.close()
            self._mss = None
