"""pairux's Prometheus metrics: rooms and connections, signaling traffic, and the call quality
clients report (the original measured none of it).

TURN fallback is the relay share of selected candidate pairs:
``sum(rate(pairux_selected_candidates_total{type="relay"}[1h]))
/ sum(rate(pairux_selected_candidates_total[1h]))`` (plan for 15–25 %, ADR 0026).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from keel.pairux.signaling.messages import Stats

ROOMS_ACTIVE = Gauge("pairux_rooms_active", "Rooms with state loaded in this process's hub")
CONNECTIONS = Gauge("pairux_connections", "Open signaling connections, by role", ["role"])
ROOMS_CREATED = Counter("pairux_rooms_created_total", "Rooms created")
JOINS = Counter("pairux_joins_total", "Participants admitted, by how", ["via"])
ROOMS_FULL = Counter("pairux_rooms_full_total", "Joins refused because the room was full")
TOPOLOGY_MOVES = Counter("pairux_topology_moves_total", "Rooms moved to the SFU")
MESSAGES = Counter("pairux_signaling_messages_total", "Signaling messages accepted", ["type"])
ERRORS = Counter("pairux_signaling_errors_total", "Error frames sent, by code", ["code"])
CLOSES = Counter("pairux_signaling_closes_total", "Connections closed by the server", ["code"])
HOST_TRANSFERS = Counter("pairux_host_transfers_total", "Host changes", ["reason"])
ROLE_CHANGES = Counter("pairux_role_changes_total", "Roles recorded", ["role"])

ICE_GATHERING = Histogram(
    "pairux_ice_gathering_seconds",
    "Client-reported ICE gathering time",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
SELECTED_CANDIDATES = Counter(
    "pairux_selected_candidates_total",
    "Selected local candidate type of a connection (counted once per change)",
    ["type"],
)
VIEWER_FPS = Histogram(
    "pairux_viewer_fps",
    "Client-reported decoded frames per second",
    buckets=(1, 5, 10, 15, 24, 30, 45, 60),
)
FRAME_HEIGHT = Histogram(
    "pairux_viewer_frame_height_pixels",
    "Client-reported decoded frame height",
    buckets=(240, 360, 480, 720, 1080, 1440, 2160),
)
RTT = Histogram(
    "pairux_rtt_seconds",
    "Client-reported round-trip time of the selected candidate pair",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 1, 2),
)
PACKET_LOSS = Histogram(
    "pairux_packet_loss_ratio",
    "Client-reported packet loss (0–1)",
    buckets=(0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
)
INPUT_LATENCY = Histogram(
    "pairux_input_latency_seconds",
    "Client-reported viewer→injection latency",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1),
)


def observe(stats: Stats, *, candidate_changed: bool) -> None:
    """Record one validated quality report."""
    if stats.iceGatheringMs is not None:
        ICE_GATHERING.observe(stats.iceGatheringMs / 1000)
    if stats.candidateType is not None and candidate_changed:
        SELECTED_CANDIDATES.labels(stats.candidateType).inc()
    if stats.fps is not None:
        VIEWER_FPS.observe(stats.fps)
    if stats.height is not None:
        FRAME_HEIGHT.observe(stats.height)
    if stats.rttMs is not None:
        RTT.observe(stats.rttMs / 1000)
    if stats.packetLoss is not None:
        PACKET_LOSS.observe(stats.packetLoss)
    if stats.inputLatencyMs is not None:
        INPUT_LATENCY.observe(stats.inputLatencyMs / 1000)
