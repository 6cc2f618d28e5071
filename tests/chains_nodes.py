"""Real local chain nodes for tests: anvil (EVM) and litecoind in regtest (UTXO).

Each node runs as a child process on free 127.0.0.1 ports, with its data in a temporary
directory, and nothing reaches beyond loopback: anvil forks nothing, and litecoind has no DNS
seeds, no outbound peers and no listening socket (unless a test peers two nodes on loopback).

The fixtures ``anvil`` and ``litecoind`` start one node per test session; a test that stops or
reorganises a node for itself asks ``chain_nodes`` for a node of its own. Import the fixtures
into a ``conftest.py`` to use them (``from tests.chains_nodes import anvil, ...``).

Where a binary is missing the tests skip, except under ``KEEL_TEST_CHAIN_NODES=1`` (set by
``.ci/run``) or ``CI=true``, where they fail: CI never silently skips a real node.
Binaries: ``anvil`` from ``$KEEL_ANVIL_BIN``, else ``.cache/npm`` (where ``.ci/run`` installs
npm ``@foundry-rs/anvil``), else ``$PATH``; ``litecoind`` from ``$KEEL_LITECOIND_BIN``, else
``$PATH`` (Debian ``litecoind``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
NPM_ANVIL = REPO / ".cache/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
TOKEN_ARTEFACT = REPO / "tests/coinpay/chains/contracts/TestToken.json"
NODES_REQUIRED = (
    os.environ.get("KEEL_TEST_CHAIN_NODES", "") == "1" or os.environ.get("CI", "").lower() == "true"
)
READY_SECONDS = 30.0
RPC_USER, RPC_PASSWORD = "keel", "regtest-secret"
TRANSFER_SELECTOR = "a9059cbb"  # transfer(address,uint256)


def need_node(reason: str) -> None:
    """Fail under KEEL_TEST_CHAIN_NODES=1 / CI=true, skip elsewhere."""
    if NODES_REQUIRED:
        pytest.fail(f"KEEL_TEST_CHAIN_NODES=1 needs {reason}")
    pytest.skip(f"{reason} (set KEEL_TEST_CHAIN_NODES=1 to make this a failure)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{free_port()}"


def anvil_binary() -> str | None:
    explicit = os.environ.get("KEEL_ANVIL_BIN")
    if explicit:
        return shutil.which(explicit)
    if NPM_ANVIL.is_file():
        return str(NPM_ANVIL)
    return shutil.which("anvil")


def litecoind_binary() -> str | None:
    return shutil.which(os.environ.get("KEEL_LITECOIND_BIN") or "litecoind")


class NodeRpcError(Exception):
    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"{method}: {error}")
        self.code = error.get("code") if isinstance(error, dict) else None


class JsonRpc:
    """A plain synchronous JSON-RPC client that drives a node from a test (not the code under
    test); amounts go out and come back as Decimal."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None) -> None:
        self.url = url
        self._auth = auth
        self._ids = 0

    def __call__(self, method: str, *params: Any) -> Any:
        self._ids += 1
        body = json.dumps(
            {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": list(params)},
            default=str,
        )
        response = httpx.post(
            self.url,
            content=body,
            headers={"Content-Type": "application/json"},
            auth=self._auth,
            timeout=30.0,
            trust_env=False,
        )
        reply = json.loads(response.content, parse_float=Decimal)
        if reply.get("error") is not None:
            raise NodeRpcError(method, reply["error"])
        return reply["result"]


@dataclass
class Node:
    """A node process: ``url`` is what a provider list names (credentials included)."""

    name: str
    process: subprocess.Popen[bytes]
    workdir: Path
    url: str
    rpc: JsonRpc
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        tails = []
        for path in (self.workdir / "stderr.log", self.log_path):
            if path.is_file():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                tails.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(tails) or "(no log)"

    def wait_ready(self, probe: str) -> None:
        deadline = time.monotonic() + READY_SECONDS
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self.rpc(probe)
                return
            except (httpx.HTTPError, NodeRpcError, ValueError) as exc:
                last = exc  # not listening yet, or warming up (-28)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"{self.name} not ready in {READY_SECONDS} s ({last}):\n{self.log_tail()}"
        )


@dataclass
class Anvil(Node):
    """anvil with instant mining and its ten unlocked, funded dev accounts."""

    accounts: list[str] = field(default_factory=list)

    def send_eth(self, to: str, wei: int, *, sender: int = 0, gas: int | None = None) -> str:
        tx: dict[str, str] = {"from": self.accounts[sender], "to": to, "value": hex(wei)}
        if gas is not None:  # skips estimation, so a transaction that reverts is still mined
            tx["gas"] = hex(gas)
        return str(self.rpc("eth_sendTransaction", tx))

    def deploy_token(self, *, sender: int = 0) -> str:
        """Deploys tests/coinpay/chains/contracts/TestToken (6 decimals, whole supply to the
        sender); returns its address."""
        bytecode = json.loads(TOKEN_ARTEFACT.read_text())["bytecode"]
        tx_hash = self.rpc("eth_sendTransaction", {"from": self.accounts[sender], "data": bytecode})
        receipt = self.receipt(tx_hash)
        assert receipt["status"] == "0x1", receipt
        return str(receipt["contractAddress"])

    def send_token(self, token: str, to: str, amount: int, *, sender: int = 0) -> str:
        data = "0x" + TRANSFER_SELECTOR + to[2:].lower().rjust(64, "0") + f"{amount:064x}"
        return str(
            self.rpc(
                "eth_sendTransaction", {"from": self.accounts[sender], "to": token, "data": data}
            )
        )

    def receipt(self, tx_hash: str) -> dict[str, Any]:
        receipt: dict[str, Any] = self.rpc("eth_getTransactionReceipt", tx_hash)
        return receipt

    def height(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))


@dataclass
class Litecoind(Node):
    """litecoind -regtest, usually with a wallet holding mature coins (101 blocks mined)."""

    p2p_port: int = 0

    def new_address(self) -> str:
        return str(self.rpc("getnewaddress"))

    def send(self, address: str, amount: Decimal) -> str:
        return str(self.rpc("sendtoaddress", address, str(amount)))

    def mine(self, blocks: int = 1, address: str | None = None) -> list[str]:
        hashes: list[str] = self.rpc("generatetoaddress", blocks, address or self.new_address())
        return hashes

    def mine_empty(self, address: str | None = None) -> str:
        """A block with no transaction but its coinbase, whatever the mempool holds."""
        return str(self.rpc("generateblock", address or self.new_address(), [])["hash"])

    def mine_block_with(self, *transactions: str, address: str | None = None) -> str:
        """A block holding exactly ``transactions`` (raw hex, or txids in the mempool) after its
        coinbase, whatever else the mempool holds; returns its hash."""
        block = self.rpc("generateblock", address or self.new_address(), list(transactions))
        return str(block["hash"])

    def height(self) -> int:
        return int(self.rpc("getblockcount"))


def start_anvil(binary: str, workdir: Path) -> Anvil:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "anvil.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(port), "--chain-id", "31337"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    url = f"http://127.0.0.1:{port}"
    node = Anvil("anvil", process, workdir, url, JsonRpc(url), log_path)
    node.wait_ready("eth_chainId")
    node.accounts = list(node.rpc("eth_accounts"))
    return node


def start_litecoind(
    binary: str, workdir: Path, *, listen: bool = False, follow: Litecoind | None = None
) -> Litecoind:
    """A regtest node that talks to no one. With ``listen`` it accepts peers on 127.0.0.1
    (and still connects to none); with ``follow`` it has no wallet and follows that node's
    chain over one loopback P2P connection."""
    workdir.mkdir(parents=True, exist_ok=True)
    rpc_port, p2p_port = free_port(), free_port()
    args = [
        binary,
        "-regtest",
        f"-datadir={workdir}",
        "-printtoconsole=0",
        "-dnsseed=0",
        "-upnp=0",
        "-discover=0",
        "-rpcbind=127.0.0.1",
        "-rpcallowip=127.0.0.1",
        f"-rpcport={rpc_port}",
        f"-port={p2p_port}",
        f"-rpcuser={RPC_USER}",
        f"-rpcpassword={RPC_PASSWORD}",
        "-fallbackfee=0.0001",
        "-keypool=10",  # the default 1000 keys make createwallet take ~3 s
        # Shutdown waits for idle keep-alive RPC connections to time out (30 s by default).
        "-rpcservertimeout=1",
    ]
    if listen:
        args += ["-listen=1", "-bind=127.0.0.1", "-listenonion=0", "-connect=0"]
    else:
        args += ["-listen=0"]
    if follow is not None:
        args += [f"-connect=127.0.0.1:{follow.p2p_port}", "-disablewallet"]
    elif not listen:
        args += ["-connect=0"]
    log_path = workdir / "regtest" / "debug.log"
    with (workdir / "stderr.log").open("wb") as stderr:  # startup errors land here
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://{RPC_USER}:{RPC_PASSWORD}@127.0.0.1:{rpc_port}"
    rpc = JsonRpc(f"http://127.0.0.1:{rpc_port}", (RPC_USER, RPC_PASSWORD))
    node = Litecoind("litecoind", process, workdir, url, rpc, log_path, p2p_port)
    node.wait_ready("getblockchaininfo")
    return node


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    """One anvil for the session (chain id 31337, instant mining)."""
    binary = anvil_binary()
    if binary is None:
        need_node("anvil (npm @foundry-rs/anvil; .ci/run installs it into .cache/npm)")
        raise AssertionError("unreachable")
    node = start_anvil(binary, tmp_path_factory.mktemp("anvil"))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def litecoind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Litecoind]:
    """One litecoind -regtest for the session, its wallet holding 101 blocks of rewards."""
    node = _wallet_node(tmp_path_factory.mktemp("litecoind"))
    try:
        yield node
    finally:
        node.stop()


def _litecoind_binary() -> str:
    binary = litecoind_binary()
    if binary is None:
        need_node("litecoind (apt-get install litecoind)")
        raise AssertionError("unreachable")
    return binary


def _wallet_node(workdir: Path, *, listen: bool = False) -> Litecoind:
    node = start_litecoind(_litecoind_binary(), workdir, listen=listen)
    try:
        node.rpc("createwallet", "keel")
        node.mine(101)
    except BaseException:
        node.stop()
        raise
    return node


@dataclass
class ChainNodes:
    """Starts nodes a test keeps to itself, and stops them after the test."""

    tmp_path: Path
    started: list[Node] = field(default_factory=list)

    def anvil(self) -> Anvil:
        binary = anvil_binary()
        if binary is None:
            need_node("anvil (npm @foundry-rs/anvil; .ci/run installs it into .cache/npm)")
            raise AssertionError("unreachable")
        node = start_anvil(binary, self.tmp_path / f"anvil-{len(self.started)}")
        self.started.append(node)
        return node

    def litecoind(self, *, listen: bool = False) -> Litecoind:
        """A node with a wallet and 101 blocks; with ``listen``, peers may join on loopback."""
        node = _wallet_node(self.tmp_path / f"litecoind-{len(self.started)}", listen=listen)
        self.started.append(node)
        return node

    def litecoind_following(self, leader: Litecoind) -> Litecoind:
        """A node without a wallet that follows ``leader``'s chain, synced to its tip."""
        node = start_litecoind(
            _litecoind_binary(), self.tmp_path / f"litecoind-{len(self.started)}", follow=leader
        )
        self.started.append(node)
        target = leader.rpc("getbestblockhash")
        deadline = time.monotonic() + READY_SECONDS
        while node.rpc("getbestblockhash") != target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"follower did not sync to {target}:\n{node.log_tail()}")
            time.sleep(0.05)
        return node


@pytest.fixture
def chain_nodes(tmp_path: Path) -> Iterator[ChainNodes]:
    nodes = ChainNodes(tmp_path)
    try:
        yield nodes
    finally:
        for node in nodes.started:
            node.stop()
