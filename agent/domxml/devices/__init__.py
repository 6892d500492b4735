"""One module per libvirt device element; each exports `build(spec) -> list of elements`."""
