"""roadmaps' HTTP routers: parse, authorise, call the domain, shape the reply."""
