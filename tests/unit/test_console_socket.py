"""The serial console socket handed to ovirt-vmconsole's group (runtime/console_socket.py), on
real unix sockets in a temp dir."""

import grp
import os
import socket

import pytest

from agent.runtime import console_socket


@pytest.fixture
def bound(tmp_path):
    path = str(tmp_path / "vm.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    os.chmod(path, 0o700)  # as a strict umask leaves it: nobody but QEMU's user may connect
    yield path
    s.close()


def another_group() -> grp.struct_group:
    """A group this host has that the socket is not in yet (root's tests may chown)."""
    mine = os.getegid()
    return next(g for g in grp.getgrall() if g.gr_gid != mine)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another group needs root")
def test_socket_gets_the_group_and_group_rw(bound):
    group = another_group()
    console_socket.share(bound, group.gr_name)
    st = os.stat(bound)
    assert st.st_gid == group.gr_gid
    assert st.st_mode & 0o777 == 0o760  # owner's bits kept, the group may connect


def test_a_group_the_host_lacks_only_opens_the_group_bits(bound):
    before = os.stat(bound).st_gid
    console_socket.share(bound, "no-such-group-hvagent")
    st = os.stat(bound)
    assert st.st_gid == before and st.st_mode & 0o777 == 0o760


def test_no_socket_or_not_a_socket_is_left_alone(tmp_path, caplog):
    console_socket.share(str(tmp_path / "missing.sock"), "")
    plain = tmp_path / "file"
    plain.write_text("x")
    os.chmod(plain, 0o600)
    console_socket.share(str(plain), "")
    assert os.stat(plain).st_mode & 0o777 == 0o600
    assert "is not there" in caplog.text and "is not a socket" in caplog.text
