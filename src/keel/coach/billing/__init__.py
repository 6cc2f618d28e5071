"""Paying for coach: invoices, and what paying one unlocks (``coach_users.paid_until``).

errors.py      the billing errors
coins.py       the coins coach sells through coinpay: chain, asset, decimals, exact units
lifecycle.py   an invoice's state machine (open, paid, expired), pure
invoices.py    coach_invoices as value objects, and the one write that unlocks a paid invoice
events.py      coinpay's webhook events read into value objects
coinpay.py     the coinpay route: ``subscribe`` creates a payment per invoice, and
               ``apply_coinpay_event`` applies coinpay's signed webhook exactly once
"""
