"""A real local Solana peer for tests: LiteSVM behind a small JSON-RPC server on 127.0.0.1.

LiteSVM (``solders.litesvm``) runs the real SVM in process: signatures are checked, fees are
charged, and the System, SPL Token and Associated Token Account programs run for real. It is
not an RPC server, so :class:`SolanaPeer` puts one in front of it that answers exactly the
methods coinpay's ``SolanaSource`` and ``SolanaSender`` call, in the shapes a validator gives:

* every transaction sent is executed at once and recorded as the only transaction of a new
  block in the next slot (as anvil mines); :meth:`SolanaPeer.skip` makes the next slots empty
  (skipped), :meth:`SolanaPeer.mine` adds empty blocks;
* ``getBlock`` answers the jsonParsed layout: ``accountKeys`` objects, ``pre/postBalances``,
  ``pre/postTokenBalances`` with ``mint``, ``owner`` and ``uiTokenAmount.amount`` read from the
  token accounts before and after; instructions are left unparsed (``programId``, ``accounts``,
  base58 ``data``), which coinpay does not read. A skipped slot answers ``-32007`` at or below
  the root, ``-32004`` above it, as validators do;
* the blockhash queue is the peer's own (LiteSVM only knows its latest): a blockhash is valid
  for ``blockhash_window`` blocks after its block (150 on mainnet); a transaction naming an
  older one fails preflight with "Blockhash not found", or, sent with ``skipPreflight``, is
  dropped without landing, as a validator does;
* commitment: every block is confirmed at once; it is finalized (rooted) ``root_lag`` slots
  later, which is what ``finalized`` reads and ``getSignatureStatuses`` report.

Airdrops (:meth:`SolanaPeer.airdrop`) fund test wallets outside any block. Nothing listens
beyond loopback. The ``solana_peer`` fixture starts a peer per test (a LiteSVM costs
milliseconds); without solders the test fails under ``KEEL_TEST_CHAIN_NODES=1`` / ``CI=true``
and skips elsewhere, like the other nodes (``tests/chains_nodes.py``).
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from tests.chains_nodes import need_node

if TYPE_CHECKING:
    from solders.keypair import Keypair
    from solders.pubkey import Pubkey
    from solders.transaction import Transaction

# Validator error codes (agave rpc_custom_error.rs).
PREFLIGHT_FAILURE = -32002
SIGNATURE_FAILURE = -32003
BLOCK_NOT_AVAILABLE = -32004
SLOT_SKIPPED = -32007
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
MINT_SIZE = 82


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


@dataclass
class _Block:
    slot: int
    parent_slot: int
    height: int
    blockhash: str
    previous: str
    transactions: list[dict[str, Any]] = field(default_factory=list)


class SolanaPeer:
    """LiteSVM with a block history and a JSON-RPC front (module docstring)."""

    def __init__(self, *, root_lag: int = 0, blockhash_window: int = 150) -> None:
        from solders.litesvm import LiteSVM

        self.svm = LiteSVM().with_blockhash_check(False)  # the peer keeps the queue itself
        self.root_lag = root_lag
        self.window = blockhash_window
        self.lock = threading.RLock()
        genesis = str(self.svm.latest_blockhash())
        self.blocks: dict[int, _Block] = {0: _Block(0, 0, 0, genesis, "1" * 32)}
        self.slot = 0
        self.valid: dict[str, int] = {genesis: 0}  # blockhash -> block height of its block
        self.statuses: dict[str, tuple[int, Any]] = {}  # signature -> (slot, err)
        self._skip_next = 0
        self.servers: list[ThreadingHTTPServer] = []
        self.url = ""  # the first front's, once served

    # Serving ----------------------------------------------------------------------------------

    def serve(self) -> str:
        """Start one more HTTP front on a free loopback port; returns its URL."""
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                reply = peer.handle(json.loads(body))
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        self.url = self.url or url
        return url

    def stop(self, url: str | None = None) -> None:
        """Stop the front at ``url`` (connections to it are then refused), or all of them."""
        for server in list(self.servers):
            if url is None or url.endswith(f":{server.server_address[1]}"):
                server.shutdown()
                server.server_close()
                self.servers.remove(server)

    def handle(self, request: Any) -> Any:
        if isinstance(request, list):
            return [self.handle(item) for item in request]
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        method = getattr(self, "rpc_" + str(request.get("method")), None)
        try:
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, "Method not found")
            with self.lock:
                reply["result"] = method(*request.get("params", []))
        except RpcError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                reply["error"]["data"] = exc.data
        return reply

    # Chain state ------------------------------------------------------------------------------

    @property
    def latest(self) -> _Block:
        return self.blocks[self.slot]

    @property
    def root(self) -> int:
        return max(0, self.slot - self.root_lag)

    def _view(self, options: Any) -> _Block:
        """The newest block at the commitment asked for."""
        commitment = options.get("commitment") if isinstance(options, dict) else None
        if commitment != "finalized":
            return self.latest
        return self.blocks[max(s for s in self.blocks if s <= self.root)]

    def _produce(self, transactions: list[dict[str, Any]]) -> _Block:
        parent = self.latest
        self.slot += 1 + self._skip_next
        self._skip_next = 0
        self.svm.warp_to_slot(self.slot)
        self.svm.expire_blockhash()
        blockhash = str(self.svm.latest_blockhash())
        block = _Block(
            self.slot, parent.slot, parent.height + 1, blockhash, parent.blockhash, transactions
        )
        self.blocks[self.slot] = block
        self.valid[blockhash] = block.height
        return block

    def mine(self, blocks: int = 1) -> None:
        """Empty blocks in the next slots."""
        with self.lock:
            for _ in range(blocks):
                self._produce([])

    def skip(self, slots: int = 1) -> None:
        """The next ``slots`` slots get no block (their leaders were offline)."""
        with self.lock:
            self._skip_next += slots

    def _blockhash_ok(self, blockhash: str) -> bool:
        made = self.valid.get(blockhash)
        return made is not None and self.latest.height <= made + self.window

    # Test wallet ------------------------------------------------------------------------------

    def airdrop(self, to: Pubkey, lamports: int) -> None:
        with self.lock:
            result = self.svm.airdrop(to, lamports)
            assert type(result).__name__ == "TransactionMetadata", result

    def balance(self, address: Pubkey | str) -> int:
        from solders.pubkey import Pubkey

        key = address if not isinstance(address, str) else Pubkey.from_string(address)
        with self.lock:
            account = self.svm.get_account(key)
        return 0 if account is None else int(account.lamports)

    def token_balance(self, owner: Pubkey | str, mint: Pubkey) -> int | None:
        """What ``owner``'s associated token account of ``mint`` holds; None if it has none."""
        from solders.pubkey import Pubkey
        from solders.token.state import TokenAccount

        from keel.coinpay.chains.spl import associated_token_address

        key = owner if not isinstance(owner, str) else Pubkey.from_string(owner)
        with self.lock:
            account = self.svm.get_account(associated_token_address(key, mint))
        if account is None or not account.data:
            return None
        return int(TokenAccount.from_bytes(bytes(account.data)).amount)

    def account_exists(self, address: Pubkey) -> bool:
        with self.lock:
            account = self.svm.get_account(address)
        return account is not None and (account.lamports > 0 or bool(account.data))

    def submit(self, tx: Transaction, *, skip_preflight: bool = False) -> str:
        """Send ``tx`` as ``sendTransaction`` would; returns its signature."""
        raw = base64.b64encode(bytes(tx)).decode()
        reply = self.handle(
            {
                "id": 1,
                "method": "sendTransaction",
                "params": [raw, {"encoding": "base64", "skipPreflight": skip_preflight}],
            }
        )
        if "error" in reply:
            raise RpcError(reply["error"]["code"], reply["error"]["message"])
        return str(reply["result"])

    def signed(self, payer: Keypair, instructions: list[Any], *signers: Keypair) -> Transaction:
        from solders.message import Message
        from solders.transaction import Transaction

        with self.lock:
            blockhash = self.svm.latest_blockhash()
        message = Message.new_with_blockhash(instructions, payer.pubkey(), blockhash)
        return Transaction([payer, *signers], message, blockhash)

    def send_sol(self, sender: Keypair, to: Pubkey | str, lamports: int) -> str:
        from solders.pubkey import Pubkey
        from solders.system_program import TransferParams, transfer

        key = to if not isinstance(to, str) else Pubkey.from_string(to)
        ix = transfer(TransferParams(from_pubkey=sender.pubkey(), to_pubkey=key, lamports=lamports))
        return self.submit(self.signed(sender, [ix]))

    def create_mint(self, payer: Keypair, authority: Pubkey, decimals: int = 6) -> Pubkey:
        """A Token-program mint of ``decimals`` whose mint authority is ``authority``."""
        from solders.instruction import AccountMeta, Instruction
        from solders.keypair import Keypair
        from solders.system_program import CreateAccountParams, create_account
        from solders.token import ID as TOKEN

        mint = Keypair()
        with self.lock:
            rent = self.svm.minimum_balance_for_rent_exemption(MINT_SIZE)
        create = create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=mint.pubkey(),
                lamports=rent,
                space=MINT_SIZE,
                owner=TOKEN,
            )
        )
        # InitializeMint2 (tag 20): decimals, mint authority, no freeze authority.
        initialize = Instruction(
            TOKEN,
            bytes([20, decimals]) + bytes(authority) + b"\x00",
            [AccountMeta(mint.pubkey(), is_signer=False, is_writable=True)],
        )
        self.submit(self.signed(payer, [create, initialize], mint))
        return mint.pubkey()

    def mint_to(
        self, payer: Keypair, mint: Pubkey, authority: Keypair, owner: Pubkey, amount: int
    ) -> str:
        """``amount`` new base units into ``owner``'s associated token account (created)."""
        from solders.instruction import AccountMeta, Instruction
        from solders.token import ID as TOKEN

        from keel.coinpay.chains.spl import associated_token_address, create_ata_idempotent

        ata = associated_token_address(owner, mint)
        mint_to = Instruction(
            TOKEN,
            bytes([7]) + struct.pack("<Q", amount),
            [
                AccountMeta(mint, is_signer=False, is_writable=True),
                AccountMeta(ata, is_signer=False, is_writable=True),
                AccountMeta(authority.pubkey(), is_signer=True, is_writable=False),
            ],
        )
        ixs = [create_ata_idempotent(payer.pubkey(), owner, mint), mint_to]
        return self.submit(self.signed(payer, ixs, authority))

    def send_token(
        self, sender: Keypair, mint: Pubkey, to_owner: Pubkey | str, amount: int, decimals: int = 6
    ) -> str:
        """A wallet's token payment: the recipient's associated token account created if
        missing (paid by the sender), then ``transfer_checked`` into it."""
        from solders.pubkey import Pubkey

        from keel.coinpay.chains.spl import (
            associated_token_address,
            create_ata_idempotent,
            transfer_checked,
        )

        owner = to_owner if not isinstance(to_owner, str) else Pubkey.from_string(to_owner)
        ixs = [
            create_ata_idempotent(sender.pubkey(), owner, mint),
            transfer_checked(
                associated_token_address(sender.pubkey(), mint),
                mint,
                associated_token_address(owner, mint),
                sender.pubkey(),
                amount,
                decimals,
            ),
        ]
        return self.submit(self.signed(sender, ixs))

    def create_token_account(self, payer: Keypair, mint: Pubkey, owner: Pubkey) -> Pubkey:
        """A token account of ``mint`` owned by ``owner`` at a fresh address: NOT its associated
        token account (what a program or a hand-made transaction may create)."""
        from solders.instruction import AccountMeta, Instruction
        from solders.keypair import Keypair
        from solders.system_program import CreateAccountParams, create_account
        from solders.token import ID as TOKEN

        account = Keypair()
        with self.lock:
            rent = self.svm.minimum_balance_for_rent_exemption(165)
        create = create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=account.pubkey(),
                lamports=rent,
                space=165,
                owner=TOKEN,
            )
        )
        # InitializeAccount3 (tag 18): the owner in the data; the account and its mint.
        initialize = Instruction(
            TOKEN,
            bytes([18]) + bytes(owner),
            [
                AccountMeta(account.pubkey(), is_signer=False, is_writable=True),
                AccountMeta(mint, is_signer=False, is_writable=False),
            ],
        )
        self.submit(self.signed(payer, [create, initialize], account))
        return account.pubkey()

    def send_token_to_account(
        self, sender: Keypair, mint: Pubkey, account: Pubkey, amount: int, decimals: int = 6
    ) -> str:
        """``transfer_checked`` from the sender's associated token account into ``account``."""
        from keel.coinpay.chains.spl import associated_token_address, transfer_checked

        ix = transfer_checked(
            associated_token_address(sender.pubkey(), mint),
            mint,
            account,
            sender.pubkey(),
            amount,
            decimals,
        )
        return self.submit(self.signed(sender, [ix]))

    # Execution --------------------------------------------------------------------------------

    def _snapshot(self, keys: list[Pubkey]) -> tuple[list[int], list[dict[str, Any]]]:
        from solders.token import ID as TOKEN
        from solders.token.state import Mint, TokenAccount

        lamports: list[int] = []
        tokens: list[dict[str, Any]] = []
        for index, key in enumerate(keys):
            account = self.svm.get_account(key)
            lamports.append(0 if account is None else int(account.lamports))
            if account is None or account.owner != TOKEN or len(account.data) != 165:
                continue
            state = TokenAccount.from_bytes(bytes(account.data))
            mint = self.svm.get_account(state.mint)
            decimals = Mint.from_bytes(bytes(mint.data)).decimals if mint is not None else 0
            amount = int(state.amount)
            whole = str(amount).rjust(decimals + 1, "0")
            text = (whole[:-decimals] + "." + whole[-decimals:]).rstrip("0").rstrip(".")
            tokens.append(
                {
                    "accountIndex": index,
                    "mint": str(state.mint),
                    "owner": str(state.owner),
                    "programId": str(TOKEN),
                    "uiTokenAmount": {
                        "amount": str(amount),
                        "decimals": decimals,
                        "uiAmount": amount / 10**decimals if amount else None,
                        "uiAmountString": text if decimals else str(amount),
                    },
                }
            )
        return lamports, tokens

    def rpc_sendTransaction(self, encoded: str, options: dict[str, Any] | None = None) -> str:
        from solders.transaction import Transaction

        options = options or {}
        if options.get("encoding", "base58") != "base64":
            raise RpcError(INVALID_PARAMS, "only base64 here")
        tx = Transaction.from_bytes(base64.b64decode(encoded))
        signature = str(tx.signatures[0])
        preflight = not options.get("skipPreflight", False)
        if signature in self.statuses:
            if preflight:
                raise RpcError(
                    PREFLIGHT_FAILURE,
                    "Transaction simulation failed: This transaction has already been processed",
                    {"err": "AlreadyProcessed", "logs": []},
                )
            return signature
        if not all(tx.verify_with_results()):
            raise RpcError(SIGNATURE_FAILURE, "Transaction signature verification failure")
        if not self._blockhash_ok(str(tx.message.recent_blockhash)):
            if preflight:
                raise RpcError(
                    PREFLIGHT_FAILURE,
                    "Transaction simulation failed: Blockhash not found",
                    {"err": "BlockhashNotFound", "logs": []},
                )
            return signature  # a validator drops it: it never lands
        if preflight:
            simulated = self.svm.simulate_transaction(tx)
            if type(simulated).__name__ == "FailedTransactionMetadata":
                raise RpcError(
                    PREFLIGHT_FAILURE,
                    f"Transaction simulation failed: {simulated.err()}",
                    {"err": str(simulated.err()), "logs": list(simulated.meta().logs())},
                )
        keys = list(tx.message.account_keys)
        pre, pre_tokens = self._snapshot(keys)
        result = self.svm.send_transaction(tx)
        post, post_tokens = self._snapshot(keys)
        failed = type(result).__name__ == "FailedTransactionMetadata"
        meta = result.meta() if failed else result
        err = {"InstructionError": str(result.err())} if failed else None
        header = tx.message.header
        signed_count, signed_ro = (
            header.num_required_signatures,
            header.num_readonly_signed_accounts,
        )
        unsigned_ro = header.num_readonly_unsigned_accounts

        def writable(i: int) -> bool:
            if i < signed_count:
                return i < signed_count - signed_ro
            return i < len(keys) - unsigned_ro

        block_tx = {
            "meta": {
                "err": err,
                "status": {"Err": err} if failed else {"Ok": None},
                "fee": int(meta.fee()),
                "preBalances": pre,
                "postBalances": post,
                "preTokenBalances": pre_tokens,
                "postTokenBalances": post_tokens,
                "innerInstructions": [],
                "logMessages": list(meta.logs()),
                "computeUnitsConsumed": int(meta.compute_units_consumed()),
                "rewards": [],
            },
            "transaction": {
                "signatures": [str(s) for s in tx.signatures],
                "message": {
                    "accountKeys": [
                        {
                            "pubkey": str(key),
                            "signer": i < signed_count,
                            "writable": writable(i),
                            "source": "transaction",
                        }
                        for i, key in enumerate(keys)
                    ],
                    "instructions": [
                        {
                            "programId": str(keys[ix.program_id_index]),
                            "accounts": [str(keys[a]) for a in ix.accounts],
                            "data": _b58(bytes(ix.data)),
                            "stackHeight": None,
                        }
                        for ix in tx.message.instructions
                    ],
                    "recentBlockhash": str(tx.message.recent_blockhash),
                },
            },
            "version": "legacy",
        }
        block = self._produce([block_tx])
        self.statuses[signature] = (block.slot, err)
        return signature

    # Reads ------------------------------------------------------------------------------------

    def rpc_getSlot(self, options: Any = None) -> int:
        return self._view(options).slot

    def rpc_getBlockHeight(self, options: Any = None) -> int:
        return self._view(options).height

    def rpc_getBlock(self, slot: int, options: Any = None) -> dict[str, Any]:
        options = options or {}
        block = self.blocks.get(slot)
        if block is None or slot > self._view(options).slot:
            if slot <= self.root and slot < self.slot:
                raise RpcError(
                    SLOT_SKIPPED,
                    f"Slot {slot} was skipped, or missing due to ledger jump to recent snapshot",
                )
            raise RpcError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")
        answer: dict[str, Any] = {
            "blockHeight": block.height,
            "blockTime": 1_700_000_000 + slot,
            "blockhash": block.blockhash,
            "parentSlot": block.parent_slot,
            "previousBlockhash": block.previous,
        }
        details = options.get("transactionDetails", "full")
        if details == "full":
            if options.get("encoding") != "jsonParsed":
                raise RpcError(INVALID_PARAMS, "this peer serves full blocks as jsonParsed only")
            answer["transactions"] = json.loads(json.dumps(block.transactions))
        elif details == "signatures":
            answer["signatures"] = [t["transaction"]["signatures"][0] for t in block.transactions]
        return answer

    def rpc_getBlocks(self, start: int, end: int | None = None, options: Any = None) -> list[int]:
        if isinstance(end, dict):
            end, options = None, end
        top = self._view(options).slot if end is None else min(end, self._view(options).slot)
        return sorted(slot for slot in self.blocks if start <= slot <= top)

    def rpc_getLatestBlockhash(self, options: Any = None) -> dict[str, Any]:
        block = self._view(options)
        return {
            "context": {"slot": self.slot},
            "value": {
                "blockhash": block.blockhash,
                "lastValidBlockHeight": block.height + self.window,
            },
        }

    def rpc_isBlockhashValid(self, blockhash: str, options: Any = None) -> dict[str, Any]:
        return {"context": {"slot": self.slot}, "value": self._blockhash_ok(blockhash)}

    def rpc_getFeeForMessage(self, encoded: str, options: Any = None) -> dict[str, Any]:
        from solders.message import Message

        message = Message.from_bytes(base64.b64decode(encoded))
        fee = None
        if self._blockhash_ok(str(message.recent_blockhash)):
            fee = 5000 * message.header.num_required_signatures
        return {"context": {"slot": self.slot}, "value": fee}

    def rpc_getSignatureStatuses(
        self, signatures: list[str], options: Any = None
    ) -> dict[str, Any]:
        out: list[dict[str, Any] | None] = []
        for signature in signatures:
            found = self.statuses.get(signature)
            if found is None:
                out.append(None)
                continue
            slot, err = found
            rooted = slot <= self.root
            out.append(
                {
                    "slot": slot,
                    "confirmations": None if rooted else self.slot - slot,
                    "err": err,
                    "status": {"Err": err} if err else {"Ok": None},
                    "confirmationStatus": "finalized" if rooted else "confirmed",
                }
            )
        return {"context": {"slot": self.slot}, "value": out}

    def rpc_getMultipleAccounts(self, keys: list[str], options: Any = None) -> dict[str, Any]:
        from solders.pubkey import Pubkey

        values: list[dict[str, Any] | None] = []
        for key in keys:
            account = self.svm.get_account(Pubkey.from_string(key))
            if account is None or (account.lamports == 0 and not account.data):
                values.append(None)
                continue
            values.append(
                {
                    "lamports": int(account.lamports),
                    "owner": str(account.owner),
                    "data": [base64.b64encode(bytes(account.data)).decode(), "base64"],
                    "executable": bool(account.executable),
                    "rentEpoch": 18446744073709551615,
                    "space": len(account.data),
                }
            )
        return {"context": {"slot": self.slot}, "value": values}

    def rpc_getBalance(self, key: str, options: Any = None) -> dict[str, Any]:
        return {"context": {"slot": self.slot}, "value": self.balance(key)}

    def rpc_getMinimumBalanceForRentExemption(self, size: int, options: Any = None) -> int:
        return int(self.svm.minimum_balance_for_rent_exemption(size))


_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _ALPHABET[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def need_solders() -> None:
    try:
        import solders.litesvm  # noqa: F401
    except ImportError:
        need_node("solders with LiteSVM (pip install 'solders==0.29.*')")


@pytest.fixture
def solana_peer() -> Iterator[SolanaPeer]:
    """A fresh LiteSVM peer serving JSON-RPC on loopback (its URL: ``peer.url``), blocks
    finalized 32 slots after they are made, as on mainnet."""
    need_solders()
    peer = SolanaPeer(root_lag=32)
    peer.serve()
    try:
        yield peer
    finally:
        peer.stop()
