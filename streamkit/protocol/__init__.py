"""What the client and the server agree on: names, keys and filters, limits, headers,
media types and the route table. Imports nothing else of streamkit's."""
