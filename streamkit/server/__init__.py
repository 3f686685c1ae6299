"""The streamkit server: an aiohttp app over a pluggable storage engine (``store``)."""
