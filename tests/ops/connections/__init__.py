"""Connection limits (idle and header timeouts, the cap, TLS), on each loop the server runs on."""
