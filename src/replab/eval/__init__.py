"""The evaluation protocol: everything here works through ``encode(x)`` alone."""
