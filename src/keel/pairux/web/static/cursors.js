// Every participant's cursor over the shared picture, with their name.
//
// The host sends where each controller's (virtual) cursor is, in the same 0-1 coordinates the
// input uses; a viewer draws them on a layer over its video, placed on the picture itself (not
// the letterboxed element), each in a colour of its own chosen from the participant's id, so
// the same person has the same colour on every screen.

import { contentRect } from "./input.js";

const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"];

/** A stable colour for a participant id (FNV-1a over its characters). */
export function colourFor(id) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i += 1) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return COLOURS[hash % COLOURS.length];
}

/** A layer over `video` showing the cursors of `update()`'s participants. */
export class CursorLayer {
  constructor(video, { self = null } = {}) {
    this.video = video;
    this.self = self; // our own id: our cursor is the real one, not drawn twice
    this.layer = document.createElement("div");
    this.layer.className = "pairux-cursors";
    Object.assign(this.layer.style, { position: "fixed", inset: "0", pointerEvents: "none" });
    document.body.appendChild(this.layer);
    this.marks = new Map(); // id -> element
    this.last = [];
    this.onResize = () => this.update(this.last);
    window.addEventListener("resize", this.onResize);
  }

  /** Draw `participants` ([{id, name, x, y, visible}]); anyone not listed is removed. */
  update(participants) {
    this.last = participants;
    const rect = contentRect(this.video);
    const seen = new Set();
    for (const p of participants) {
      if (p.id === this.self || p.visible === false || !rect) continue;
      if (!(p.x >= 0 && p.x <= 1 && p.y >= 0 && p.y <= 1)) continue;
      seen.add(p.id);
      const mark = this.marks.get(p.id) || this.create(p);
      mark.querySelector(".name").textContent = p.name; // text, never markup
      mark.style.transform = `translate(${rect.left + p.x * rect.width}px, ${rect.top + p.y * rect.height}px)`;
    }
    for (const [id, mark] of this.marks) {
      if (!seen.has(id)) {
        mark.remove();
        this.marks.delete(id);
      }
    }
  }

  create(p) {
    const colour = colourFor(p.id);
    const mark = document.createElement("div");
    mark.className = "pairux-cursor";
    mark.dataset.participant = p.id;
    Object.assign(mark.style, { position: "absolute", left: "0", top: "0", willChange: "transform" });
    const arrow = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    arrow.setAttribute("width", "16");
    arrow.setAttribute("height", "20");
    arrow.setAttribute("viewBox", "0 0 16 20");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M0 0 L0 16 L4 12 L7 19 L10 18 L7 11 L12 11 Z");
    path.setAttribute("fill", colour);
    path.setAttribute("stroke", "#fff");
    arrow.appendChild(path);
    const name = document.createElement("span");
    name.className = "name";
    Object.assign(name.style, {
      position: "absolute",
      left: "14px",
      top: "16px",
      background: colour,
      color: "#fff",
      font: "12px system-ui, sans-serif",
      padding: "1px 4px",
      borderRadius: "3px",
      whiteSpace: "nowrap",
    });
    mark.append(arrow, name);
    this.layer.appendChild(mark);
    this.marks.set(p.id, mark);
    return mark;
  }

  destroy() {
    window.removeEventListener("resize", this.onResize);
    this.layer.remove();
    this.marks.clear();
  }
}
