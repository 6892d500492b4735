"""One module per libvirt device element. Each exports `build(spec) -> element` (serial.py
returns its `<serial>` and `<console>` pair as a list); builders render a spec and decide
nothing."""
