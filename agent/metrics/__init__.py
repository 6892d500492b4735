"""Prometheus metrics: libvirt bulk-stats sampler, its collector, hvagent's own instruments."""
