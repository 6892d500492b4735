"""The only package that imports libvirt. Everything else talks to `virt.port.Hypervisor`."""
