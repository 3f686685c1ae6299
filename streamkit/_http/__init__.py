"""The client's HTTP plumbing (private): one aiohttp session, one typed call per route,
one retry policy and the SSE parser. Only the client's layers import it."""
