"""The evolve loop's own operators (feed, collect, result)."""
