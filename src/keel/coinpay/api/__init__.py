"""coinpay's HTTP API: parse, authorise, call the domain, shape the reply."""
