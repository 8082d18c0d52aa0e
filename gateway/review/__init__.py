"""Human review: the Redis queue, its HTTP API, the terminal client and the golden export."""
