"""The NATS JetStream engine, for more than one machine (needs the ``jetstream`` extra).

`store.JetStreamStore` is the engine; the other modules are its parts
(connection, codec, metadata, publishing, reads, dead letters).
"""
