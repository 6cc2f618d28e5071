// The viewer's input: what a controller's mouse and keyboard do over the shared screen, as
// messages of the `control` data channel (PairUX's wire format, so its host reads them too).
//
// Coordinates are normalised 0-1 against the picture itself, not the <video> element: with
// `object-fit: contain` the picture is letterboxed, and a click on the black bars is no click
// on the screen. Keys carry `code` (the physical key), `key` (what it types) and `accel`, the
// platform's shortcut key (Cmd on macOS, Ctrl elsewhere), so Cmd+C on a Mac viewer copies on a
// Linux host. Browser shortcuts a viewer needs for itself are not forwarded; everything held is
// released when the page loses focus or capture stops, so a key cannot stay down on the host.

const MOVE_INTERVAL_MS = 16; // at most ~60 pointer moves a second
const BUTTONS = ["left", "middle", "right"];
const MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);

// Combinations kept by the viewer's own browser or OS rather than sent (close tab, new tab,
// switch window, full screen).
const KEPT_LOCAL = [
  (e) => (e.ctrlKey || e.metaKey) && (e.code === "KeyW" || e.code === "KeyT"),
  (e) => e.altKey && e.code === "Tab",
  (e) => e.code === "F11",
];

/** The rectangle, in client pixels, where the video's picture is drawn (letterbox-aware). */
export function contentRect(video) {
  const box = video.getBoundingClientRect();
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height || !box.width || !box.height) return null;
  const scale = Math.min(box.width / width, box.height / height);
  const drawnWidth = width * scale;
  const drawnHeight = height * scale;
  return {
    left: box.left + (box.width - drawnWidth) / 2,
    top: box.top + (box.height - drawnHeight) / 2,
    width: drawnWidth,
    height: drawnHeight,
  };
}

/** Client coordinates as 0-1 fractions of the picture; null outside it. */
export function normalise(clientX, clientY, rect) {
  if (!rect) return null;
  const x = (clientX - rect.left) / rect.width;
  const y = (clientY - rect.top) / rect.height;
  if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return null;
  return { x, y };
}

function modifiers(e) {
  return {
    ctrl: e.ctrlKey,
    alt: e.altKey,
    shift: e.shiftKey,
    meta: e.metaKey,
    accel: MAC ? e.metaKey : e.ctrlKey,
  };
}

/**
 * Captures input over `video` while enabled and hands each message to `send`. Messages are
 * `{type: "input", timestamp, sequence, event}`; `sequence` grows by one per message, so the
 * host can drop anything stale or replayed.
 */
export class InputCapture {
  constructor(video, send, { now = () => Date.now() } = {}) {
    this.video = video;
    this.send = send;
    this.now = now;
    this.sequence = 0;
    this.enabled = false;
    this.heldKeys = new Map(); // code -> key
    this.heldButtons = new Set();
    this.lastMove = -Infinity;
    this.listeners = [];
  }

  enable() {
    if (this.enabled) return;
    this.enabled = true;
    const video = this.video;
    video.tabIndex = 0;
    this.on(video, "pointermove", (e) => this.pointerMove(e));
    this.on(video, "pointerdown", (e) => this.pointerButton(e, "down"));
    this.on(video, "pointerup", (e) => this.pointerButton(e, "up"));
    this.on(video, "wheel", (e) => this.wheel(e), { passive: false });
    this.on(video, "contextmenu", (e) => e.preventDefault());
    this.on(video, "keydown", (e) => this.key(e, "down"));
    this.on(video, "keyup", (e) => this.key(e, "up"));
    this.on(video, "blur", () => this.releaseAll());
    this.on(window, "blur", () => this.releaseAll());
    this.on(document, "visibilitychange", () => {
      if (document.hidden) this.releaseAll();
    });
  }

  disable() {
    this.releaseAll();
    for (const [target, type, handler, options] of this.listeners) {
      target.removeEventListener(type, handler, options);
    }
    this.listeners = [];
    this.enabled = false;
  }

  on(target, type, handler, options) {
    target.addEventListener(type, handler, options);
    this.listeners.push([target, type, handler, options]);
  }

  emit(event) {
    this.sequence += 1;
    this.send({ type: "input", timestamp: this.now(), sequence: this.sequence, event });
  }

  where(e) {
    return normalise(e.clientX, e.clientY, contentRect(this.video));
  }

  pointerMove(e) {
    const at = this.where(e);
    const t = performance.now();
    if (!at || t - this.lastMove < MOVE_INTERVAL_MS) return;
    this.lastMove = t;
    this.emit({ type: "mouse", action: "move", x: at.x, y: at.y });
  }

  pointerButton(e, action) {
    const button = BUTTONS[e.button];
    if (!button) return;
    const at = this.where(e);
    if (action === "down") {
      if (!at) return; // on the black bars: not a click on the screen
      e.preventDefault();
      this.video.focus();
      this.video.setPointerCapture?.(e.pointerId); // a drag may leave the picture
      this.heldButtons.add(button);
    } else {
      if (!this.heldButtons.has(button)) return;
      this.heldButtons.delete(button);
    }
    const point = at || this.lastPoint || { x: 0, y: 0 };
    this.lastPoint = point;
    this.emit({ type: "mouse", action, button, x: point.x, y: point.y });
  }

  wheel(e) {
    const at = this.where(e);
    if (!at) return;
    e.preventDefault();
    this.emit({
      type: "mouse",
      action: "scroll",
      x: at.x,
      y: at.y,
      deltaX: e.deltaX,
      deltaY: e.deltaY,
      deltaMode: e.deltaMode,
    });
  }

  key(e, action) {
    if (KEPT_LOCAL.some((kept) => kept(e))) return;
    e.preventDefault();
    if (action === "down") {
      if (e.repeat && this.heldKeys.has(e.code)) return; // the host repeats a held key itself
      this.heldKeys.set(e.code, e.key);
    } else {
      if (!this.heldKeys.has(e.code)) return;
      this.heldKeys.delete(e.code);
    }
    this.emit({ type: "keyboard", action, key: e.key, code: e.code, modifiers: modifiers(e) });
  }

  /** Let go of every key and button still held on the host. */
  releaseAll() {
    const none = { ctrl: false, alt: false, shift: false, meta: false, accel: false };
    for (const [code, key] of this.heldKeys) {
      this.emit({ type: "keyboard", action: "up", key, code, modifiers: none });
    }
    this.heldKeys.clear();
    const point = this.lastPoint || { x: 0, y: 0 };
    for (const button of this.heldButtons) {
      this.emit({ type: "mouse", action: "up", button, x: point.x, y: point.y });
    }
    this.heldButtons.clear();
  }
}
