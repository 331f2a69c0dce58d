"""The live reconstruction server: frame messages in, skeletons out (``posestudio serve``).

- :mod:`.config`: the studio configuration file (``studio_configs/*.toml``).
- :mod:`.stats`: the server's counters, latencies and stage timings, and their JSON.
- :mod:`.processing`: one frame set's work: decode, detect on all views, reconstruct, publish.
- :mod:`.server`: :class:`~.server.LiveServer`, the receive, assembly and processing threads.
"""
