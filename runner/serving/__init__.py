"""Serving a policy over the network: where a server may listen and who may call it."""
