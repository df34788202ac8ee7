"""Several nodes: where each live show's studio runs, and what happens when its node goes.

Each node reports its load to Redis on a short heartbeat (`load.py`); a show's studio is placed
on the least loaded node and held there by a lease, a Redis key set NX and renewed, so no two
nodes ever run one show (`lease.py`); a node's studios save their playhead every second
(`playhead.py`), from which another node resumes the show when the lease lapses (`node.py`);
requests for a show's media that reach another node are proxied to its owner (`proxy.py`).
Without ONAIR_REDIS_URL none of this runs: one node, studios local.
"""
