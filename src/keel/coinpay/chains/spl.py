"""The few SPL Token and Associated Token Account instructions a token sweep sends.

Their layouts are the programs' public instruction formats (a one-byte tag, then little-endian
fields; account order as each program reads it). solders gives the program ids, the ATA
derivation and the account decoders, not these builders, and the ``solana`` package that has
them would add a second client library for three byte strings.

Only the original Token program (``Tokenkeg…``): USDC and USDT on Solana live there. A mint of
Token-2022 is refused by the sender, not swept with the wrong program.
"""

from __future__ import annotations

import struct
from typing import Final

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.token import ID as TOKEN_PROGRAM_ID
from solders.token.associated import get_associated_token_address

__all__ = [
    "ATA_PROGRAM_ID",
    "TOKEN_ACCOUNT_SIZE",
    "TOKEN_PROGRAM_ID",
    "associated_token_address",
    "close_account",
    "create_ata_idempotent",
    "transfer_checked",
]

ATA_PROGRAM_ID: Final = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
TOKEN_ACCOUNT_SIZE: Final = 165  # bytes of a Token program account (rent is paid on these)

# Token program instruction tags.
_TRANSFER_CHECKED: Final = 12
_CLOSE_ACCOUNT: Final = 9
# Associated Token Account program: 1 = CreateIdempotent (succeeds if the account exists).
_CREATE_IDEMPOTENT: Final = 1


def associated_token_address(owner: Pubkey, mint: Pubkey) -> Pubkey:
    """The associated token account of ``owner`` for ``mint`` (the Token program's)."""
    return get_associated_token_address(owner, mint)


def create_ata_idempotent(payer: Pubkey, owner: Pubkey, mint: Pubkey) -> Instruction:
    """Create ``owner``'s associated token account for ``mint``, rent paid by ``payer``; does
    nothing when it exists already (so a sweep never fails on a payee's account)."""
    return Instruction(
        ATA_PROGRAM_ID,
        bytes([_CREATE_IDEMPOTENT]),
        [
            AccountMeta(payer, is_signer=True, is_writable=True),
            AccountMeta(associated_token_address(owner, mint), is_signer=False, is_writable=True),
            AccountMeta(owner, is_signer=False, is_writable=False),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
            AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        ],
    )


def transfer_checked(
    source: Pubkey,
    mint: Pubkey,
    destination: Pubkey,
    authority: Pubkey,
    amount: int,
    decimals: int,
) -> Instruction:
    """Move ``amount`` base units of ``mint`` between token accounts; the program refuses it
    when ``decimals`` is not the mint's, so a misconfigured token cannot move 10^n too much."""
    if not 0 <= amount < 2**64 or not 0 <= decimals < 256:
        raise ValueError("amount must fit a u64 and decimals a u8")
    return Instruction(
        TOKEN_PROGRAM_ID,
        struct.pack("<BQB", _TRANSFER_CHECKED, amount, decimals),
        [
            AccountMeta(source, is_signer=False, is_writable=True),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(destination, is_signer=False, is_writable=True),
            AccountMeta(authority, is_signer=True, is_writable=False),
        ],
    )


def close_account(account: Pubkey, destination: Pubkey, authority: Pubkey) -> Instruction:
    """Close an empty token account; its rent lamports go to ``destination``."""
    return Instruction(
        TOKEN_PROGRAM_ID,
        bytes([_CLOSE_ACCOUNT]),
        [
            AccountMeta(account, is_signer=False, is_writable=True),
            AccountMeta(destination, is_signer=False, is_writable=True),
            AccountMeta(authority, is_signer=True, is_writable=False),
        ],
    )
