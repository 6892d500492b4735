"""The serial console's unix socket handed to ovirt-vmconsole (VDSM's prepareVmChannel).

QEMU binds `<[virt] console_socket_dir>/<vmId>.sock` as its own user with a umask that leaves
the group without write access, so ovirt-vmconsole-host (its own user, in the
`ovirt-vmconsole` group) could not connect. Once the domain runs, hvagent makes the socket
group-readable and -writable and, when `[virt] console_socket_group` names a group this host
has, gives it to that group. Blocking (a stat, a chmod, a chown): runs on a worker thread.
"""

from __future__ import annotations

import grp
import logging
import os
import stat

log = logging.getLogger(__name__)


def share(path: str, group: str) -> None:
    """Make the console socket at `path` usable by `group` ("" or a group this host lacks:
    group permissions only). A missing socket or a refused change is logged, not raised:
    the VM runs either way."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        log.warning("the console socket %s is not there", path)
        return
    if not stat.S_ISSOCK(st.st_mode):
        log.warning("%s is not a socket: left alone", path)
        return
    gid = -1
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            log.info("no group %r on this host: the console socket keeps its group", group)
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IRGRP | stat.S_IWGRP)
        if gid != -1 and gid != st.st_gid:
            os.chown(path, -1, gid, follow_symlinks=False)
    except OSError as exc:
        log.warning("could not hand the console socket %s to its group: %s", path, exc)
