// The viewer page: join a room (by code, or by the invite in the URL fragment), say hello on
// the signaling socket with the participant token (never in a URL), answer the host's offer,
// show the picture, ask for and give back control, send input while granted, draw everyone's
// cursors, and show (and report) the connection's quality.
//
// `?relay=1` (or the checkbox) makes the peer connection relay-only (iceTransportPolicy
// "relay"): everything goes through TURN, with the credentials the server issued on join.
// `window.pairux` exposes the live state for tests and for debugging in the console.

import { InputCapture, contentRect, normalise } from "./input.js";
import { CursorLayer } from "./cursors.js";

const ROOT = new URL("../", import.meta.url); // /pairux/
const STATS_INTERVAL_MS = 2000;
const CURSOR_INTERVAL_MS = 33;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = {
  me: null,
  hostId: null,
  iceServers: [],
  relay: params.get("relay") === "1",
  ws: null,
  pc: null,
  channel: null,
  granted: false,
  requested: false,
  stats: {},
  gatheringStarted: 0,
  iceGatheringMs: null,
  candidateErrors: [],
  log: [],
};
window.pairux = state;

const video = $("screen");
const capture = new InputCapture(video, (message) => sendControl(message));
state.capture = capture;
let cursors = null;

function status(text) {
  $("status").textContent = text;
  state.log.push(text);
}

// -- joining ---------------------------------------------------------------------------------

const invite = new URLSearchParams(location.hash.slice(1)).get("invite");
if (invite) $("code-row").hidden = true;
$("relay").checked = state.relay;
$("name").value = params.get("name") || localStorage.getItem("pairux-name") || "";
if (params.get("code")) $("code").value = params.get("code");

$("join").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("join-error").textContent = "";
  state.relay = $("relay").checked;
  const name = $("name").value.trim();
  const body = { display_name: name };
  if (invite) body.invite = invite;
  else body.code = $("code").value.trim();
  $("join-button").disabled = true;
  try {
    const response = await fetch(new URL("api/rooms/join", ROOT), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(reply.detail || reply.title || `HTTP ${response.status}`);
    localStorage.setItem("pairux-name", name);
    history.replaceState(null, "", location.pathname + location.search); // the invite is spent
    $("join").hidden = true;
    $("room").hidden = false;
    connect(reply.token, reply.ws);
  } catch (error) {
    $("join-error").textContent = `Could not join: ${error.message}`;
    $("join-button").disabled = false;
  }
});

// -- signaling -------------------------------------------------------------------------------

// Close codes after which coming back cannot help: the room ended, the token is no longer
// taken, or another tab of ours took the seat.
const FINAL_CLOSES = new Set([4001, 4009, 4010]);
const RECONNECT_MAX_MS = 10000;

function connect(token, path, delay = 500) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token }));
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "welcome") delay = 500; // it worked: a later drop starts over
    onSignal(message);
  };
  ws.onclose = (event) => {
    if (FINAL_CLOSES.has(event.code)) {
      status(event.code === 4010 ? "The room has ended." : `Disconnected (${event.code}).`);
      setControl(false);
      return;
    }
    // A server restart (1012) or a network blip: the picture goes on peer to peer while the
    // signaling comes back with the same token.
    status("Reconnecting…");
    setTimeout(() => connect(token, path, Math.min(delay * 2, RECONNECT_MAX_MS)), delay);
  };
}

function signal(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

async function onSignal(m) {
  switch (m.type) {
    case "welcome":
      state.me = m.you.id;
      state.hostId = m.room.hostId;
      state.iceServers = m.iceServers || [];
      cursors = cursors || new CursorLayer(video, { self: state.me });
      status("Waiting for the host…");
      break;
    case "offer":
      await answer(m.from, m.sdp);
      break;
    case "ice":
      if (state.pc && m.candidate) await state.pc.addIceCandidate(m.candidate).catch(() => {});
      break;
    case "ice-servers":
      state.iceServers = m.iceServers || [];
      break;
    case "host":
      state.hostId = m.participant;
      break;
    case "control-denied":
      state.requested = false;
      setControl(false);
      status("The host declined.");
      break;
    case "ping":
      signal({ type: "pong" });
      break;
    case "room-ended":
      status("The room has ended.");
      break;
    case "error":
      state.log.push(`error ${m.code}`);
      break;
    default:
      break;
  }
}

// -- the peer connection -----------------------------------------------------------------------

async function answer(hostId, sdp) {
  if (state.pc) state.pc.close();
  state.hostId = hostId;
  const pc = new RTCPeerConnection({
    iceServers: state.iceServers,
    iceTransportPolicy: state.relay ? "relay" : "all",
  });
  state.pc = pc;
  state.gatheringStarted = performance.now();
  pc.onicecandidate = (event) => {
    const c = event.candidate;
    if (!c) {
      state.iceGatheringMs = performance.now() - state.gatheringStarted;
      return;
    }
    signal({
      type: "ice",
      to: hostId,
      candidate: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex },
    });
  };
  pc.onicecandidateerror = (event) => state.candidateErrors.push(event.errorCode);
  pc.ontrack = (event) => {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
  };
  pc.onconnectionstatechange = () => {
    if (pc !== state.pc) return;
    const s = pc.connectionState;
    if (s === "connected") status("Connected");
    else if (s === "failed") {
      // Ask the host for a new offer with fresh ICE (a changed network, a NAT rebinding).
      status("Connection failed; asking the host to reconnect…");
      signal({ type: "restart", to: hostId });
    }
    else if (s === "disconnected") status("Connection interrupted…");
  };
  pc.ondatachannel = (event) => {
    if (event.channel.label !== "control") return;
    const channel = event.channel;
    state.channel = channel;
    channel.onmessage = (e) => onControl(JSON.parse(e.data));
    channel.onopen = () => channelReady();
    if (channel.readyState === "open") channelReady(); // onopen may already have passed
    channel.onclose = () => setControl(false);
  };
  await pc.setRemoteDescription({ type: "offer", sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  signal({ type: "answer", to: hostId, sdp: pc.localDescription.sdp });
}

function channelReady() {
  $("control").disabled = false;
}

function sendControl(message) {
  const channel = state.channel;
  if (channel && channel.readyState === "open") channel.send(JSON.stringify(message));
}

// -- control ---------------------------------------------------------------------------------

function setControl(granted) {
  state.granted = granted;
  if (granted) capture.enable();
  else capture.disable();
  const button = $("control");
  button.textContent = granted ? "Release control" : state.requested ? "Requested…" : "Request control";
  button.dataset.state = granted ? "granted" : state.requested ? "requested" : "view-only";
}

function onControl(m) {
  switch (m.type) {
    case "control-grant":
      state.requested = false;
      setControl(true);
      status("You have control");
      break;
    case "control-revoke":
      state.requested = false;
      setControl(false);
      status(m.reason === "released" ? "Control given back" : "Control ended");
      break;
    case "control-denied":
      state.requested = false;
      setControl(false);
      status(m.reason === "host" ? "The host declined." : `Control refused (${m.reason}).`);
      break;
    case "cursors":
      if (cursors) cursors.update(m.participants);
      break;
    case "ping":
      sendControl({ type: "pong", timestamp: m.timestamp });
      break;
    case "pong":
      // Our own ping, back from the host agent over the control channel: what input takes
      // to get there is half the round trip (injecting it adds some 0.05 ms, ADR 0027).
      if (Number.isFinite(m.timestamp)) state.controlRttMs = Date.now() - m.timestamp;
      break;
    default:
      break;
  }
}

$("control").addEventListener("click", () => {
  if (state.granted) {
    sendControl({ type: "control-release", timestamp: Date.now() });
    setControl(false);
  } else if (!state.requested) {
    state.requested = true;
    sendControl({ type: "control-request", timestamp: Date.now() });
    setControl(false);
  }
});

let lastCursor = 0;
video.addEventListener("pointermove", (e) => {
  const now = performance.now();
  if (now - lastCursor < CURSOR_INTERVAL_MS) return;
  const at = normalise(e.clientX, e.clientY, contentRect(video));
  if (!at) return;
  lastCursor = now;
  sendControl({ type: "cursor", x: at.x, y: at.y, visible: true });
});

// -- connection quality ----------------------------------------------------------------------

async function readStats(pc) {
  const report = await pc.getStats();
  const found = {};
  let pairId = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      found.framesDecoded = s.framesDecoded || 0;
      found.fps = s.framesPerSecond;
      found.width = s.frameWidth;
      found.height = s.frameHeight;
      const lost = s.packetsLost || 0;
      const total = lost + (s.packetsReceived || 0);
      found.packetLoss = total ? Math.max(0, lost) / total : 0;
    } else if (s.type === "transport" && s.selectedCandidatePairId) {
      pairId = s.selectedCandidatePairId;
    }
  });
  const pair = pairId ? report.get(pairId) : null;
  if (pair) {
    if (pair.currentRoundTripTime !== undefined) found.rttMs = pair.currentRoundTripTime * 1000;
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    if (local) {
      found.candidateType = local.candidateType;
      found.relayProtocol = local.relayProtocol;
      found.localAddress = local.address;
    }
    if (remote) found.remoteCandidateType = remote.candidateType;
  }
  return found;
}

function report(found) {
  const message = { type: "stats" };
  if (state.iceGatheringMs !== null) message.iceGatheringMs = Math.min(600000, state.iceGatheringMs);
  if (["host", "srflx", "prflx", "relay"].includes(found.candidateType)) {
    message.candidateType = found.candidateType;
  }
  if (Number.isFinite(found.fps)) message.fps = Math.min(1000, found.fps);
  if (found.width >= 1) message.width = Math.round(found.width);
  if (found.height >= 1) message.height = Math.round(found.height);
  if (Number.isFinite(found.rttMs)) message.rttMs = Math.min(600000, found.rttMs);
  if (Number.isFinite(found.packetLoss)) message.packetLoss = Math.min(1, found.packetLoss);
  if (Number.isFinite(state.controlRttMs)) {
    message.inputLatencyMs = Math.min(600000, Math.max(0, state.controlRttMs / 2));
  }
  signal(message);
}

function show(found) {
  const parts = [];
  if (found.width) parts.push(`${found.width}×${found.height}`);
  if (Number.isFinite(found.fps)) parts.push(`${found.fps.toFixed(0)} fps`);
  if (Number.isFinite(found.rttMs)) parts.push(`RTT ${found.rttMs.toFixed(0)} ms`);
  if (Number.isFinite(found.packetLoss)) parts.push(`loss ${(found.packetLoss * 100).toFixed(1)}%`);
  if (found.candidateType) parts.push(found.candidateType);
  $("quality").textContent = parts.join(" · ");
}

/** The current figures (tests call this to poll without waiting for the next report). */
state.readStats = async () => (state.pc ? readStats(state.pc) : {});

setInterval(async () => {
  if (!state.pc || state.pc.connectionState !== "connected") return;
  sendControl({ type: "ping", timestamp: Date.now() }); // answered with a pong: input latency
  const found = await readStats(state.pc);
  found.inputLatencyMs = Number.isFinite(state.controlRttMs) ? state.controlRttMs / 2 : undefined;
  state.stats = found;
  show(found);
  report(found);
}, STATS_INTERVAL_MS);
