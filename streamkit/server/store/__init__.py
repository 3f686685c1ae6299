"""Storage engines behind the server. The app talks only to `base.Store`."""
