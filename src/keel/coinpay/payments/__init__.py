"""Payments: created at a frozen rate on a fresh address (``creation``), read by their owner
(``reading``), followed on their chain (``watching``), paid by test mode's customer
(``simulation``) and forwarded to the merchant (``forwarding``). ``model`` holds the
:class:`Payment` value and ``store`` every read and write of its row."""

from keel.coinpay.payments.creation import NewPayment, create
from keel.coinpay.payments.forwarding import forward, sweeper
from keel.coinpay.payments.model import Payment
from keel.coinpay.payments.reading import events, get, get_public, list_payments, operator_list
from keel.coinpay.payments.simulation import simulate
from keel.coinpay.payments.store import FORWARD_JOB
from keel.coinpay.payments.watching import after_scan, expire_due, refresh, watch_active

__all__ = [
    "FORWARD_JOB",
    "NewPayment",
    "Payment",
    "after_scan",
    "create",
    "events",
    "expire_due",
    "forward",
    "get",
    "get_public",
    "list_payments",
    "operator_list",
    "refresh",
    "simulate",
    "sweeper",
    "watch_active",
]
