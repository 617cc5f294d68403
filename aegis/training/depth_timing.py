"""How the depth-model tools time the models on held-out frames: in turns, in blocks, or each call after other memory was read."""

EVICT_BYTES = 8 << 20
"""Bytes of other memory the evicted timing reads before each call: more than a core's L2 cache."""
TIMINGS = {
    "turns": "each frame: cheap, large, cascade in turn (a change of the machine's load falls on all three alike)",
    "blocks": "each model on every frame before the next (each runs as it would alone, its own calls keeping the caches)",
    "evicted": f"in turns, with {EVICT_BYTES >> 20} MB of other memory read before each call (the caches the rest of a robot's stack would leave)",
}
"""How aegis.training.depth_pipeline.heldout_rows times the models: the cache state each call starts in moves the cascade's share of the large model's time."""
