"""Direct on-chain payments: a user pastes a transaction hash, we check it pays their invoice.

hashes.detect(text)          which chain(s) the hash can be on (ask when ambiguous)
adapters/                    read the transaction: EvmRpc, Etherscan (ETH), SolanaRpc (SOL),
                             Tronscan (TRON), each an ObservedPayment or a typed error
verify.check(expected, obs)  pure: accepted, refused (why), or wait (not final yet)
claims.claim(...)            the replay store: a hash unlocks one invoice, once
verifier.PaymentVerifier     the four steps, returning an Outcome for the bot
"""
