"""coinpay: multi-chain crypto payment gateway."""
