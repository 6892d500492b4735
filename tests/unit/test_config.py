import pytest

from agent import config
from agent.config import ConfigError


def write(tmp_path, text, name="hvagent.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_without_file(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "absent.toml")
    cfg = config.load(None)
    assert cfg.rpc.listen == "127.0.0.1:54322"
    assert (cfg.rpc.host, cfg.rpc.port) == ("127.0.0.1", 54322)
    assert (cfg.stomp.listen, cfg.stomp.tls) == ("0.0.0.0:54321", True)
    assert cfg.libvirt.uri == "qemu:///system"
    assert cfg.virt.domain_type == "kvm"


def test_shipped_conf_file_is_exactly_the_defaults():
    from pathlib import Path

    shipped = Path(__file__).parents[2] / "conf" / "hvagent.toml"
    assert config.load(shipped) == config.Config.defaults()


def test_file_values_dropins_and_overrides(tmp_path):
    p = write(tmp_path, '[libvirt]\nuri = "test:///default"\n[virt]\ndomain_type = "qemu"\n')
    (tmp_path / "hvagent.toml.d").mkdir()
    write(
        tmp_path / "hvagent.toml.d", '[rpc]\nlisten = "0.0.0.0:1"\ninsecure = true\n', "10-a.toml"
    )
    write(tmp_path / "hvagent.toml.d", '[rpc]\nlisten = "[::1]:2"\n', "20-b.toml")
    cfg = config.load(p, {"libvirt.uri": "qemu:///session"})
    assert cfg.libvirt.uri == "qemu:///session"
    assert cfg.virt.domain_type == "qemu"
    assert (cfg.rpc.host, cfg.rpc.port) == ("::1", 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[rpcc]\nlisten = 'x:1'\n", "unknown section [rpcc]"),
        ("[rpc]\nlistn = 'x:1'\n", "[rpc] listn: unknown key"),
        ("[rpc]\nlisten = 54321\n", "[rpc] listen: expected str, got int"),
        ("[rpc]\nlisten = 'nohost'\n", "listen must be HOST:PORT"),
        ("[virt]\ndomain_type = 'xen'\n", "domain_type must be 'kvm' or 'qemu'"),
        ("[virt]\nconsole_log_dir = 'rel/dir'\n", "console_log_dir must be an absolute path"),
        ("[virt]\nconsole_socket_dir = 'run'\n", "console_socket_dir must be an absolute path"),
        (f"[virt]\nconsole_socket_dir = '/{'d' * 70}'\n", "console_socket_dir is too long"),
        ("[virt]\nhotunplug_timeout_s = 0\n", "hotunplug_timeout_s must be more than 0"),
        ("[libvirt]\ncall_threads = 0\n", "call_threads must be at least 1"),
        ("[logging]\nlevel = 'LOUD'\n", "level must be"),
        ("[payload]\ndir = 'run/payload'\n", "[payload]: dir must be an absolute path"),
        ("[payload]\nmax_bytes = 0\n", "max_bytes must be between"),
        ("[payload]\nmax_bytes = '10M'\n", "[payload] max_bytes: expected int, got str"),
        ("[rpc\n", "not valid TOML"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path, text, expected):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        config.load(p)
    assert str(p) in str(exc.value)
    assert expected in str(exc.value)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.toml")


def test_bad_override_names_command_line():
    with pytest.raises(ConfigError, match="command line: \\[virt\\] domain_type"):
        config.load(None, {"virt.domain_type": 3})


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"rpc.listen": "0.0.0.0:1"}, "[rpc] listen"),
        ({"rpc.listen": "[::]:1"}, "[rpc] listen"),
        ({"stomp.listen": "10.1.2.3:1", "stomp.tls": False}, "[stomp] listen"),
    ],
)
def test_plain_listeners_off_loopback_need_insecure(overrides, named):
    with pytest.raises(ConfigError, match="insecure = true") as exc:
        config.load(None, overrides)
    assert named in str(exc.value)
    section = named[1:].split("]")[0]
    assert config.load(None, {**overrides, f"{section}.insecure": True})


@pytest.mark.parametrize(
    "overrides",
    [
        {"rpc.listen": "127.0.0.1:1"},
        {"rpc.listen": "[::1]:1"},
        {"rpc.listen": "localhost:1"},
        {"stomp.listen": "127.0.0.1:1", "stomp.tls": False},
        {"stomp.listen": "0.0.0.0:54321", "stomp.tls": True},
    ],
)
def test_loopback_or_tls_needs_no_flag(overrides):
    assert config.load(None, overrides)


def test_host_access_lists_from_toml(tmp_path):
    path = write(tmp_path, '[host_access]\nimage_roots = ["/srv/images"]\nallow_hostdev = true\n')
    cfg = config.load(path)
    assert cfg.host_access.image_roots == ("/srv/images",)
    assert cfg.host_access.allow_hostdev is True
    assert cfg.host_access.block_prefixes == ("/dev/disk/by-id/", "/dev/mapper/")
    for text, key in (
        ('[host_access]\nimage_roots = ["rel"]\n', "host_access"),
        ("[host_access]\nimage_roots = [1]\n", "image_roots"),
        ('[host_access]\nimage_roots = "/srv"\n', "image_roots"),
    ):
        with pytest.raises(config.ConfigError, match=key):
            config.load(write(tmp_path, text))
