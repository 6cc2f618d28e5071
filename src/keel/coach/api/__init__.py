"""coach's HTTP routers."""
