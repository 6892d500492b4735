from agent import hostinfo

CAPS = """<capabilities><host><uuid>abc</uuid><cpu><arch>x86_64</arch><model>Skylake</model>
<vendor>Intel</vendor></cpu></host>
<guest><os_type>hvm</os_type><arch name='x86_64'><machine canonical='pc-i440fx-7.2'>pc</machine>
<machine>q35</machine><domain type='qemu'/><domain type='kvm'/></arch></guest>
<guest><arch name='i686'><machine>isapc</machine></arch></guest></capabilities>"""


def test_capabilities():
    caps = hostinfo.capabilities(CAPS)
    assert caps.host_uuid == "abc"
    assert (caps.cpu_model, caps.cpu_vendor) == ("Skylake", "Intel")
    assert caps.domain_types == ("kvm", "qemu")
    assert caps.machines == ("pc", "pc-i440fx-7.2", "q35")


def test_proc_parsers():
    assert hostinfo.meminfo("MemTotal: 100 kB\nMemFree:  40 kB\nHugePages_Total: 0\n") == {
        "MemTotal": 100,
        "MemFree": 40,
        "HugePages_Total": 0,
    }
    a = hostinfo.cpu_times("cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 1 1 1 1\n")
    b = hostinfo.cpu_times("cpu  20 0 20 160 0 0 0 0 0 0\n")
    user, system, idle = hostinfo.cpu_percent(a, b)
    assert (round(user), round(system), round(idle)) == (10, 10, 80)
    assert hostinfo.os_release('NAME="Debian"\nVERSION_ID="12"\n') == {
        "NAME": "Debian",
        "VERSION_ID": "12",
    }


DOMCAPS = """<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path><cpu>
  <mode name='host-passthrough' supported='yes'/>
  <mode name='custom' supported='yes'>
    <model usable='no' vendor='unknown'>qemu64</model>
    <model usable='yes' vendor='Intel'>Haswell-noTSX</model>
  </mode></cpu></domainCapabilities>"""


def test_cpu_models_from_domain_capabilities():
    # every model this QEMU knows counts (usable='no' means KVM cannot run it on this CPU,
    # which TCG still can); a model QEMU does not know fails at start, hence the check
    assert hostinfo.cpu_models(DOMCAPS) == frozenset({"qemu64", "Haswell-noTSX"})
    assert hostinfo.cpu_models("") is None  # the test driver has no domain capabilities
