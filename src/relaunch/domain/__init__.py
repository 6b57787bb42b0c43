"""The domain: what a run is and the decisions about it. Pure: no I/O, no clock reads, no SDKs."""
