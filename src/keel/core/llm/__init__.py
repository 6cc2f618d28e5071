"""OpenAI-compatible chat completions for every product that talks to a model.

``sse`` decodes an event stream whatever its chunking; ``chat`` runs one exchange (streamed or
whole) with connect, read and whole-answer timeouts, and sorts every failure into the three
kinds a caller acts on differently. Routing between models is each product's policy.
"""
