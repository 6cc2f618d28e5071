"""Chain sources a pasted transaction is read from: one module per external system, each a
:class:`~keel.coach.payments.adapters.base.PaymentSource` over a caller-owned
``httpx.AsyncClient`` behind its own circuit breaker."""
