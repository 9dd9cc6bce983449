"""Optional plugins shipped with keras-inspect, enabled by entry points when their library exists."""
