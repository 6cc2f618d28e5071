"""Chain watchers: where coinpay learns what arrived at a payment address."""
