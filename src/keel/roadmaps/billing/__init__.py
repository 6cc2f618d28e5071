"""Subscriptions through LemonSqueezy and what they entitle a user to.

plans.py          plans, their daily limits, variants -> plans, grace periods (settings)
errors.py         the billing errors
jsonapi.py        LemonSqueezy's JSON:API resources read into our value objects
webhooks.py       X-Signature verification and webhook parsing
subscriptions.py  the subscription state machine and the webhook's one transaction
lemonsqueezy.py   the API adapter that re-checks a subscription (httpx + breaker)
entitlements.py   which plan a user has now, degrading gracefully when the provider is down
"""
